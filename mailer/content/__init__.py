"""Content: an issue folder made into one inlined HTML part and one text part.

Owns reading reports, the Jinja environments (sandboxed), premailer inlining
(the only import of premailer), the lint (a11y and csscompat: accessibility and
mail-client checks of the inlined HTML) and the per-recipient placeholders.
May import only the floor (config, errors, headers).
"""
