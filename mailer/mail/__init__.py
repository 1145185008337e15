"""Mail: one reader's message as bytes, and the editor's preview of it.

Owns MIME assembly, list headers, personalisation of the composed issue,
purpose-bound tokens and the links built from them, and DKIM signing.
May import content and the floor; never people, sending or anything above.
"""
