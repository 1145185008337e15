"""`mailer intake`: read the submission mailbox once and file each new mail, held, once.

A mail is remembered in `submission` by its key (Message-ID, or a hash of its bytes) in the same
transaction that records it as held or refused, after its files were written under
``inbox/held/``; only then is it put away on the server (Maildir: cur/ with the seen flag; IMAP:
flagged seen, moved to `submissions.done_folder`; POP3: deleted at the end of the session). A crash
in between leaves a mail the next poll recognises and only puts away. A refused mail is
remembered too (counted once) and left where it is, unread, for a person to see. Two polls at once
are safe: the key is unique, and the loser of the race removes its files.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Callable

from sqlalchemy import select
from sqlalchemy.exc import DatabaseError, IntegrityError

from mailer.config import Settings
from mailer.db import Database
from mailer.errors import ConfigError, MailboxError
from mailer.models import Submission, SubmissionStatus
from mailer.people.mailbox import Letter, Mailbox, open_mailbox
from mailer.submissions import reply
from mailer.submissions.convert import convert, title_of
from mailer.submissions.held import details_of, held_dir, write_held
from mailer.submissions.senders import check_sender

MAX_MAIL = 30_000_000
Log = Callable[[str], None]
log_ = logging.getLogger("mailer.intake")


@dataclass
class Tally:
    """What one poll did."""

    filed: int = 0
    refused: int = 0
    already: int = 0
    replied: int = 0

    def line(self) -> str:
        return (f"{self.filed} filed (held for approval), {self.refused} refused, "
                f"{self.already} already taken, {self.replied} auto-replies sent")


def digest_folder(settings: Settings) -> Path:
    """The `submissions.digest` folder (a path from the root, or a name under the issues folder)."""
    from mailer.content.folders import ISSUE_FILE

    if not settings.submissions_digest:
        raise ConfigError("setting 'submissions.digest' is not set: name the digest folder reports are filed for")
    candidates = [settings.path(settings.submissions_digest),
                  settings.path(settings.issues_dir) / settings.submissions_digest]
    folder = next((c for c in candidates if c.is_dir()), candidates[0]).resolve()
    if not (folder / ISSUE_FILE).is_file():
        raise ConfigError(f"setting 'submissions.digest': {folder} is not a digest folder (no {ISSUE_FILE})")
    return folder


def settings_mailbox(settings: Settings) -> Mailbox:
    """The `submissions.mailbox`, with the submissions.* password, CA file and done folder."""
    if not settings.submissions_mailbox:
        raise ConfigError("setting 'submissions.mailbox' is not set: give the Maildir path or the "
                          "imaps:// or pop3s:// URL members mail their reports to")
    return open_mailbox(settings.submissions_mailbox, password=settings.submissions_password,
                        ca_file=settings.submissions_ca_file, done_folder=settings.submissions_done_folder,
                        section="submissions")


def parse(data: bytes) -> EmailMessage:
    message = BytesParser(policy=policy.default).parsebytes(data)
    assert isinstance(message, EmailMessage)
    return message


def _status(db: Database, key: str) -> SubmissionStatus | None:
    with db.session() as session:
        return session.scalar(select(Submission.status).where(Submission.key == key))


def _record(db: Database, row: Submission) -> int | None:
    """Insert *row*; its id, or None when another poll recorded the same mail first."""
    try:
        with db.session() as session:
            session.add(row)
            session.flush()
            return row.id
    except IntegrityError:
        return None


def take(db: Database, settings: Settings, digest: Path, box: Mailbox, letter: Letter, tally: Tally,
         log: Log, backend_name: str | None = None) -> None:
    """File or refuse one new mail, then put it away and answer it (when filed)."""
    data = letter.read()
    try:
        msg = parse(data)
        verdict = check_sender(db, settings, msg) if len(data) <= MAX_MAIL else None
    except (ValueError, TypeError, IndexError) as exc:      # headers the parser cannot read
        msg, verdict = None, None
        reason = f"unreadable mail: {type(exc).__name__}"
    else:
        reason = "" if verdict is not None else f"over {MAX_MAIL / 1e6:.0f} MB"
    sender = verdict.sender if verdict is not None else ""
    converted = convert(msg) if (msg is not None and verdict is not None and verdict.allowed) else None
    if verdict is not None and not verdict.allowed:
        reason = verdict.reason
    elif converted is not None and not converted.reports:
        reason = "nothing to file: no text, and no .md, .txt or .docx attached"
    if reason or converted is None or msg is None:
        title = converted.title if converted is not None else title_of(msg) if msg is not None else ""
        if _record(db, Submission(key=letter.key, status=SubmissionStatus.REFUSED, sender=sender[:320],
                                  title=title[:300], digest=str(digest), reason=reason)) is None:
            tally.already += 1
            return
        tally.refused += 1
        log(f"{letter.name}: refused{f' ({sender})' if sender else ''}: {reason}")
        return
    folder = write_held(digest, converted)
    try:
        new_id = _record(db, Submission(key=letter.key, status=SubmissionStatus.HELD, sender=sender[:320],
                                        title=converted.title[:300], digest=str(digest), folder=folder,
                                        details=details_of(converted)))
    except BaseException:        # the database failed: no record, so no files either (the next poll retries)
        shutil.rmtree(held_dir(digest) / folder, ignore_errors=True)
        raise
    if new_id is None:
        shutil.rmtree(held_dir(digest) / folder, ignore_errors=True)
        tally.already += 1
        return
    tally.filed += 1
    kept = len(converted.reports) + len(converted.images)
    log(f"{letter.name}: filed #{new_id} from {sender}: {converted.title or '(no subject)'!r}, {kept} file(s)"
        + (f"; dropped {', '.join(n for n, _ in converted.dropped)}" if converted.dropped else ""))
    box.done(letter)
    if not settings.submissions_reply:
        return
    why = reply.why_not(msg)
    if why:
        log(f"{letter.name}: no auto-reply ({why})")
        return
    failed = reply.send_reply(settings, reply.reply_message(settings, msg, converted.title, new_id, converted.dropped),
                              backend_name)
    if failed:
        log(f"{letter.name}: auto-reply to {sender} not sent: {failed}")
    else:
        tally.replied += 1


def intake(db: Database, settings: Settings, box: Mailbox | None = None, log: Log = lambda line: None,
           backend_name: str | None = None) -> Tally:
    """Poll *box* (default: the `submissions.mailbox`) once: file each new mail, held, in the digest's inbox."""
    digest = digest_folder(settings)
    box = box if box is not None else settings_mailbox(settings)
    tally = Tally()
    with box:
        for letter in box.letters():
            status = _status(db, letter.key)
            if status is None:
                try:
                    take(db, settings, digest, box, letter, tally, log, backend_name)
                except (MailboxError, DatabaseError):
                    raise
                except Exception as exc:   # noqa: BLE001  (one odd mail must not block the ones after it)
                    log_.exception("intake: %s", letter.name)
                    if _record(db, Submission(key=letter.key, status=SubmissionStatus.REFUSED, digest=str(digest),
                                              reason=f"could not be read: {type(exc).__name__}")) is not None:
                        tally.refused += 1
                        log(f"{letter.name}: refused: could not be read: {type(exc).__name__}: {exc}")
                continue
            tally.already += 1
            if status is not SubmissionStatus.REFUSED:
                box.done(letter)      # filed before a crash kept it from being put away
    return tally
