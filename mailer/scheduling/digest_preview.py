"""`mailer digest --preview`: what the next digest of a folder would hold now, moving nothing.

Composes copies of the inbox's reports in a temporary folder, with the same per-report checks
and template as a run (mailer.scheduling.digest). May import content and the floor.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import select

from mailer.config import Settings
from mailer.db import Database
from mailer.models import Schedule, ScheduleKind, utcnow
from mailer.scheduling.digest import check_reports, issue_toml, check_folder, inbox_files

@dataclass(frozen=True)
class Preview:
    """What the next digest would hold now (nothing moved)."""

    subject: str
    reports: tuple[str, ...]
    rejected: tuple[tuple[str, str], ...]
    min_reports: int
    warnings: tuple[str, ...]

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
        subject, warnings = "", ()
        for path in good:
            shutil.copyfile(path, issue / "reports" / path.name)
        if good:
            composed = compose_issue(settings, issue)
            subject, warnings = composed.subject, composed.warnings
        return Preview(subject, tuple(p.name for p in good), tuple((p.name, e) for p, e in bad), min_reports,
                       tuple(warnings))


def digest_min_reports(db: Database, folder: Path) -> int | None:
    """The --min-reports of the newest digest schedule of *folder*, if there is one."""
    with db.session() as session:
        return session.scalar(select(Schedule.min_reports).where(
            Schedule.kind == ScheduleKind.DIGEST, Schedule.issue_path == str(folder.resolve()))
            .order_by(Schedule.id.desc()).limit(1))

