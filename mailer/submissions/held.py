"""Held reports: a row in `submission` and a folder ``<digest>/inbox/held/<folder>/``, until an editor
approves (the report files are renamed into the digest's inbox, where its next run takes them) or
rejects (the files are deleted; the row stays as the record).

A digest run takes only the files at the top of ``inbox/`` (mailer.scheduling.digest.inbox_files),
so nothing under ``inbox/held/`` goes out before it is approved. Approving renames each report in
(a rename is atomic: a run sees it whole or not at all); images are published to `media_dir` and
linked from the report when `base_url` is https.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import select, update

from mailer.config import Settings
from mailer.db import Database
from mailer.errors import InputError
from mailer.models import Submission, SubmissionStatus, utcnow
from mailer.scheduling.digest import INBOX
from mailer.submissions.convert import Converted

HELD = "held"
REASON_MAX = 1000


class NoSuchSubmission(InputError):
    """No submission has that ID."""


class NotHeld(InputError):
    """The submission was approved or rejected already (or its folder is gone)."""


@dataclass(frozen=True)
class Held:
    """One submission as the CLI and the desk show it."""

    id: int
    status: str
    sender: str
    title: str
    received_at: datetime
    digest: str
    reports: tuple[str, ...]
    images: tuple[str, ...]
    dropped: tuple[tuple[str, str], ...]
    note: str
    reason: str
    folder: Path | None

    def texts(self) -> list[tuple[str, str]]:
        """Each held report file's name and text (for `intake show`)."""
        if self.folder is None:
            return []
        out = []
        for name in self.reports:
            try:
                out.append((name, (self.folder / name).read_text(encoding="utf-8", errors="replace")))
            except OSError as exc:
                out.append((name, f"(cannot read: {exc.strerror})"))
        return out


def held_dir(digest: Path) -> Path:
    return digest / INBOX / HELD


def write_held(digest: Path, converted: Converted) -> str:
    """Write the reports and images into a new folder under inbox/held/; return its name.
    Written under a dot name and renamed, so the folder appears whole."""
    name = f"intake-{secrets.token_hex(6)}"
    base = held_dir(digest)
    base.mkdir(parents=True, exist_ok=True)
    tmp = base / f".{name}.tmp"
    tmp.mkdir()
    for file, data in [*converted.reports, *converted.images]:
        (tmp / file).write_bytes(data)
    os.rename(tmp, base / name)
    return name


def details_of(converted: Converted) -> str:
    return json.dumps({"reports": [n for n, _ in converted.reports], "images": [n for n, _ in converted.images],
                       "dropped": converted.dropped, "note": converted.note[:5000]}, ensure_ascii=False)


def _held(row: Submission) -> Held:
    data = json.loads(row.details or "{}")
    folder = held_dir(Path(row.digest)) / row.folder if row.folder else None
    return Held(row.id, row.status.value, row.sender, row.title, row.received_at, row.digest,
                tuple(data.get("reports", ())), tuple(data.get("images", ())),
                tuple(tuple(d) for d in data.get("dropped", ())), data.get("note", ""), row.reason, folder)


def held_reports(db: Database, status: SubmissionStatus | None = SubmissionStatus.HELD) -> list[Held]:
    """The submissions with *status* (None: all), oldest first."""
    with db.session() as session:
        query = select(Submission).order_by(Submission.id)
        if status is not None:
            query = query.where(Submission.status == status)
        return [_held(row) for row in session.scalars(query)]


def get(db: Database, submission_id: int) -> Held:
    """One submission; InputError when there is none of that ID."""
    with db.session() as session:
        row = session.get(Submission, submission_id)
        if row is None:
            raise NoSuchSubmission(f"no submission #{submission_id} (`mailer intake list` shows the held ones)")
        return _held(row)


def _require_held(held: Held) -> Path:
    if held.status != SubmissionStatus.HELD.value or held.folder is None:
        raise NotHeld(f"submission #{held.id} is {held.status}, not held")
    if not held.folder.is_dir():
        raise NotHeld(f"submission #{held.id}: its folder {held.folder} is missing")
    return held.folder


def _slug(title: str) -> str:
    """The title in a file name: ASCII letters and digits ("Día 3" -> "dia-3"), or "report"."""
    plain = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode().lower()
    return re.sub(r"[^a-z0-9]+", "-", plain).strip("-")[:40].strip("-") or "report"


def _claim(db: Database, submission_id: int, status: SubmissionStatus, actor: str, reason: str = "") -> bool:
    """Move a held row to *status* by compare-and-set: False when another editor decided first."""
    with db.session() as session:
        done = session.execute(
            update(Submission).where(Submission.id == submission_id, Submission.status == SubmissionStatus.HELD)
            .values(status=status, decided_at=utcnow(), decided_by=actor[:320], reason=reason))
        return bool(done.rowcount)


def _release(db: Database, submission_id: int) -> None:
    """Back to held (the files could not be moved): nothing was approved."""
    with db.session() as session:
        session.execute(update(Submission).where(Submission.id == submission_id)
                        .values(status=SubmissionStatus.HELD, decided_at=None, decided_by=""))


def approve(db: Database, settings: Settings, submission_id: int, actor: str = "cli") -> tuple[list[str], list[str]]:
    """Move a held submission's reports into its digest's inbox; return (the inbox file names, notes).

    The row is claimed first (held -> approved, once: the CLI and the desk may race), then each
    report is renamed in; if that fails the row goes back to held with the files that are left."""
    held = get(db, submission_id)
    folder = _require_held(held)
    if not _claim(db, submission_id, SubmissionStatus.APPROVED, actor):
        raise NotHeld(f"submission #{held.id} was decided by someone else a moment ago")
    inbox = Path(held.digest) / INBOX
    moved: list[str] = []
    try:
        notes = _link_images(settings, held, folder)
        for number, name in enumerate(held.reports, 1):
            suffix = name.rsplit(".", 1)[-1]
            base = f"{held.received_at:%Y%m%d-%H%M}-{_slug(held.title)}-{held.id}" + (
                f"-{number}" if len(held.reports) > 1 else "")
            target, n = inbox / f"{base}.{suffix}", 1
            while target.exists():
                target, n = inbox / f"{base}-{n}.{suffix}", n + 1
            os.rename(folder / name, target)      # whole or not at all: the digest never sees half a file
            moved.append(target.name)
    except OSError as exc:
        _release(db, submission_id)
        raise InputError(f"submission #{held.id}: cannot move its reports into {inbox}: {exc.strerror or exc}"
                         + (f" ({', '.join(moved)} already moved)" if moved else "")) from None
    with db.session() as session:
        session.execute(update(Submission).where(Submission.id == submission_id).values(folder=""))
    shutil.rmtree(folder, ignore_errors=True)
    return moved, notes


def reject(db: Database, submission_id: int, reason: str = "", actor: str = "cli") -> Held:
    """Refuse a held submission: its files are deleted, the row keeps who, when and why."""
    held = get(db, submission_id)
    if held.status != SubmissionStatus.HELD.value:
        raise NotHeld(f"submission #{held.id} is {held.status}, not held")
    if len(reason) > REASON_MAX:
        raise InputError(f"reason: at most {REASON_MAX} characters")
    if not _claim(db, submission_id, SubmissionStatus.REJECTED, actor, " ".join(reason.split())):
        raise NotHeld(f"submission #{held.id} was decided by someone else a moment ago")
    with db.session() as session:
        session.execute(update(Submission).where(Submission.id == submission_id).values(folder=""))
    if held.folder is not None:
        shutil.rmtree(held.folder, ignore_errors=True)
    return held


def _link_images(settings: Settings, held: Held, folder: Path) -> list[str]:
    """Publish the images to media_dir and add them to the end of the first report (https only)."""
    from mailer.content.images import ImageCheck, check_image, media_url, publish

    if not held.images or not held.reports:
        return []
    found = ImageCheck({}, [], [])
    images = [image for name in held.images
              if (image := check_image(settings, folder, name, held.reports[0], found)) is not None]
    publish(tuple(images))
    if not settings.base_url.startswith("https://"):
        return [f"{len(images)} image(s) published to {settings.media_dir}/{folder.name}/ but not linked: "
                "base_url is not https (a mail needs https images)"]
    lines = "".join(f"\n\n![{re.sub(r'[-_.]+', ' ', Path(i.source.name).stem).strip() or 'image'}]"
                    f"(<{media_url(settings, folder.name, i.name)}>)" for i in images)
    with open(folder / held.reports[0], "a", encoding="utf-8") as report:
        report.write(lines + "\n")
    return [f"{len(images)} image(s) linked at the end of {held.reports[0]}"] + found.errors
