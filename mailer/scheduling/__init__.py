"""Scheduling: sends planned for later, and the daemon that starts them.

Owns the schedule rows (plans) and the APScheduler daemon. Starts sends only
through sending; may import everything below it, never web or cli.
"""
