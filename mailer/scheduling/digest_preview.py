"""Digest folders: finding and checking one, and `mailer digest --preview`: what the next
digest of a folder would hold now, moving nothing.

Composes copies of the inbox's reports in a temporary folder, with the same per-report checks
and template as a run (mailer.scheduling.digest). May import content and the floor.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from sqlalchemy import select

from mailer.config import Settings
from mailer.db import Database
from mailer.errors import InputError
from mailer.models import Schedule, ScheduleKind, utcnow
from mailer.scheduling.digest import INBOX, check_reports, inbox_files, issue_toml

if TYPE_CHECKING:
    from mailer.content.compose import ComposedIssue


@dataclass(frozen=True)
class Preview:
    """What the next digest would hold now (nothing moved)."""

    subject: str
    reports: tuple[str, ...]
    rejected: tuple[tuple[str, str], ...]
    min_reports: int
    warnings: tuple[str, ...]
    composed: ComposedIssue | None = field(default=None, compare=False, repr=False)   # its HTML and text

    @property
    def skipped(self) -> bool:
        return len(self.reports) < self.min_reports


def preview(settings: Settings, folder: Path, min_reports: int = 1, zone: str = "UTC",
            when: datetime | None = None) -> Preview:
    """Compose copies of the inbox's reports as the digest due *when* (default now) would."""
    from mailer.content.compose import compose_issue

    check_folder(folder)
    local = (when or utcnow()).astimezone(ZoneInfo(zone))
    with tempfile.TemporaryDirectory() as tmp:
        stage = Path(tmp)
        copies = []
        for path in inbox_files(folder):
            shutil.copyfile(path, stage / path.name)
            copies.append(stage / path.name)
        good, bad = check_reports(settings, stage, copies)
        issue = stage / f"{folder.name}-{local:%Y-%m-%d}"
        (issue / "reports").mkdir(parents=True)
        (issue / "issue.toml").write_text(issue_toml(folder, local), encoding="utf-8")
        subject, warnings, composed = "", (), None
        for path in good:
            shutil.copyfile(path, issue / "reports" / path.name)
        if good:
            composed = compose_issue(settings, issue)
            subject, warnings = composed.subject, composed.warnings
        return Preview(subject, tuple(p.name for p in good), tuple((p.name, e) for p, e in bad), min_reports,
                       tuple(warnings), composed)


def digest_min_reports(db: Database, folder: Path) -> int | None:
    """The --min-reports of the newest digest schedule of *folder*, if there is one."""
    with db.session() as session:
        return session.scalar(select(Schedule.min_reports).where(
            Schedule.kind == ScheduleKind.DIGEST, Schedule.issue_path == str(folder.resolve()))
            .order_by(Schedule.id.desc()).limit(1))


def check_folder(folder: Path) -> None:
    """A digest folder needs its issue.toml template; its inbox is made when missing."""
    from mailer.content.folders import ISSUE_FILE

    if not (folder / ISSUE_FILE).is_file():
        raise InputError(f"{folder / ISSUE_FILE}: missing (a digest folder needs an issue.toml template)")
    (folder / INBOX).mkdir(exist_ok=True)


def find_folder(settings: Settings, folder: str | Path) -> Path:
    """A digest folder given as a path (from the project root) or a bare name under settings.issues_dir."""
    candidates = [settings.path(str(folder)), settings.path(settings.issues_dir) / folder]
    return next((c for c in candidates if c.is_dir()), candidates[0]).resolve()
