"""Sending: an issue delivered to an audience, never twice, never lost.

Owns the delivery ledger (the only writer of send and delivery status), the
send loop, recovery after a crash, the failure policy, rate limits, the
campaign rules, the worker and an issue's figures (figures, for `mailer
report`). May import people, mail, backends, content and the floor; never
scheduling, web or cli.
"""
