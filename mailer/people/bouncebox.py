"""Apply the bounce and complaint reports of a mailbox, each mail once.

Every mail read is remembered in `processed_mail` by its Message-ID (a hash of its bytes when
it has none) in the same transaction that applies its report, and only then put away by its
mailbox (mailer.people.mailbox): a crash in between leaves a mail that the next run recognises
and only puts away. A mail that is not a report is remembered too (so it is counted once) but
left where it is: nothing a person may want to read is moved or deleted. Two runs at once are
safe: the key is unique, and the loser of a race counts the mail as already processed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from mailer.config import Settings
from mailer.db import Database
from mailer.errors import MailboxError
from mailer.people.bounces import Verdict, apply_feedback, parse_report
from mailer.people.mailbox import Letter, Mailbox, open_mailbox

REPORT, NOT_REPORT = "report", "not a report"
Log = Callable[[str], None]


@dataclass
class Tally:
    """What one run did."""

    reports: int = 0
    not_reports: int = 0
    already: int = 0
    suppressed: int = 0
    unknown: int = 0

    def line(self) -> str:
        return (f"{self.reports} reports, {self.not_reports} not reports (left in place), "
                f"{self.already} already processed, {self.suppressed} suppressed, "
                f"{self.unknown} unknown recipients")

    def add(self, other: "Tally") -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))


def settings_mailbox(settings: Settings, where: str | None = None, ca_file: str | None = None) -> Mailbox:
    """The mailbox at *where* (default: the `bounces.mailbox` setting) with the bounces.* settings."""
    where = where or settings.bounces_mailbox
    if not where:
        raise MailboxError("no mailbox: give a PATH or URL, or set bounces.mailbox")
    return open_mailbox(where, password=settings.bounces_password,
                        ca_file=settings.bounces_ca_file if ca_file is None else ca_file,
                        done_folder=settings.bounces_done_folder)


def _known(db: Database, key: str) -> str | None:
    from sqlalchemy import select

    from mailer.models import ProcessedMail

    with db.session() as session:
        return session.scalar(select(ProcessedMail.kind).where(ProcessedMail.key == key))


def _apply(db: Database, settings: Settings, box: Mailbox, letter: Letter, log: Log) -> Tally | None:
    """Record and apply one new mail in one transaction; None when another run got it first."""
    from sqlalchemy.exc import IntegrityError

    from mailer.models import ProcessedMail

    tally, feedback = Tally(), parse_report(settings, letter.read())
    lines: list[str] = []
    try:
        with db.session() as session:
            session.add(ProcessedMail(key=letter.key, kind=REPORT if feedback else NOT_REPORT,
                                      source=box.label[:255]))
            session.flush()          # the unique key: a concurrent run that has it stops us here
            for item in feedback:
                if item.verdict is Verdict.IGNORED:
                    continue
                applied = apply_feedback(session, settings, item)
                if not applied.subscriber_found:
                    tally.unknown += 1
                    lines.append(f"{letter.name}: {item.verdict.value} for an address we do not know; ignored")
                    continue
                tally.suppressed += applied.suppressed
                outcome = "suppressed" if applied.suppressed else "recorded"
                what = " ".join(filter(None, (item.verdict.value, item.status)))
                lines.append(f"{letter.name}: {what} for {item.recipient}: {outcome}")
    except IntegrityError:
        return None
    for line in lines:
        log(line)
    if feedback:
        tally.reports += 1
    else:
        tally.not_reports += 1
        log(f"{letter.name}: not a bounce or complaint report; skipped")
    return tally


def collect_reports(db: Database, settings: Settings, box: Mailbox, log: Log = lambda line: None) -> Tally:
    """Apply every new report of *box*, put processed reports away; count what was not a report."""
    total = Tally()
    with box:
        for letter in box.letters():
            kind = _known(db, letter.key)
            if kind is None:
                done = _apply(db, settings, box, letter, log)
                if done is not None:
                    total.add(done)
                    kind = REPORT if done.reports else NOT_REPORT
                else:
                    total.already += 1
                    kind = _known(db, letter.key)
            else:
                total.already += 1
            if kind == REPORT:
                box.done(letter)
    return total
