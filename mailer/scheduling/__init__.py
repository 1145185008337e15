"""Scheduling: sends planned for later, and the daemon that starts them.

  times   reading zones, local times and cron expressions; the next run
  plans   the schedule service: add, move, cancel, refresh, list
  runs    what is due or missed, running one schedule, resuming a send
  daemon  the APScheduler wiring and the one-scheduler lock
  digest  digest runs: an inbox of reports staged by occurrence into a new dated issue, sent once
  digest_preview  what the next digest would hold, moving nothing

Starts sends and changes their status only through sending (its ledger); may
import everything below it, never web or cli.
"""
