"""People: subscribers, lists and what happens to them.

Owns the subscription state machine and its rules (rules.decide, applied one by
one in subscriptions and in bulk by importwriter), list lookup, addresses,
CSV import and export, erasure, the privacy export, bounce/complaint
handling and the check of the links in mails (linkcheck). May import mail, content and the floor.
"""
