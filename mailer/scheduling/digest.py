"""Digests: a folder's inbox of reports, composed at each run into a new dated issue and sent.

A digest folder holds an `issue.toml` template (its subject, title, preheader
and intro may say ``{date}``) and an ``inbox/`` of report files. A run for one
occurrence (the cron time it is due, UTC) first claims it by making the folder
``.runs/<occurrence>/`` (``os.mkdir`` is atomic: a second scheduler racing for
the same occurrence is refused), then renames every inbox file into it, so each
report belongs to exactly one run. `finish` turns the staged run into a sibling
issue folder (``weekly-2026-12-04/`` with issue.toml and reports/), renamed into
place in one step, and creates its send through the ledger with the occurrence
as its claim (never twice). A report that does not compose is set aside in
``inbox/rejected/`` beside a ``.error`` file; a run with fewer good reports than
its minimum puts them back in the inbox and is skipped. ``.runs/<occurrence>/state.json``
records the end of a run; a staged run without it (a crash) is finished by
`recover` when the scheduler starts, so it goes out once. Report writers should
create files elsewhere and rename them into inbox/ (names starting with ``.``
or ending ``.tmp`` are not taken). May import sending, content and the floor.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Sequence
from zoneinfo import ZoneInfo

from sqlalchemy import select

from mailer.config import Settings
from mailer.db import Database
from mailer.errors import ComposeError, MailerError
from mailer.models import Schedule, ScheduleKind, Send, SendList, SendStatus, utcnow
from mailer.sending import ledger

log = logging.getLogger("mailer.scheduler")

INBOX, REJECTED, RUNS = "inbox", "rejected", ".runs"
RUN_FILE, STATE_FILE, BUILD = "run.json", "state.json", "issue"
MARKER = ".digest-run"   # in a composed issue folder: the occurrence it was made for
TEMPLATE_TEXT = ("subject", "title", "preheader", "intro")


@dataclass
class DigestRun:
    """What one run decided: ``sent`` (a send was made), ``skipped``, ``claimed`` (by another) or ``failed``."""

    occurrence: str
    status: str
    message: str
    issue: Path | None = None
    send_id: int | None = None
    reports: list[str] = field(default_factory=list)
    rejected: list[tuple[str, str]] = field(default_factory=list)


def occurrence_of(when: datetime) -> str:
    """The claim key of a run: its due time in UTC."""
    return f"{when.astimezone(timezone.utc):%Y-%m-%dT%H:%M:%SZ}"


def inbox_files(folder: Path) -> list[Path]:
    """The reports waiting in the inbox, by name (not hidden, not half-written .tmp files)."""
    inbox = folder / INBOX
    if not inbox.is_dir():
        return []
    return sorted(p for p in inbox.iterdir()
                  if p.is_file() and not p.name.startswith(".") and not p.name.endswith((".tmp", "~")))


def _write_json(path: Path, data: dict) -> None:
    """Write *data* to *path* atomically (a crash leaves the old file or the new one)."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=1), encoding="utf-8")
    os.replace(tmp, path)


def run_digest(db: Database, settings: Settings, folder: Path, lists: Sequence[str], when: datetime,
               zone: str = "UTC", min_reports: int = 1, audience: dict | None = None) -> DigestRun:
    """Claim the run of *when*, stage the inbox and finish it; a made send is left for run_send.
    *audience* (of the lists) is kept with the staged run, so a run finished after a crash has it."""
    occurrence = occurrence_of(when)
    runs = folder / RUNS
    runs.mkdir(exist_ok=True)
    stage = runs / occurrence.replace(":", "")
    try:
        os.mkdir(stage)
    except FileExistsError:
        return DigestRun(occurrence, "claimed", f"run of {occurrence} already claimed")
    _write_json(stage / RUN_FILE, {"occurrence": occurrence, "lists": list(lists), "zone": zone,
                                   "min_reports": min_reports, "audience": audience or None})
    for path in inbox_files(folder):
        try:
            os.rename(path, stage / path.name)
        except FileNotFoundError:   # taken by another run meanwhile
            continue
    return finish(db, settings, stage)


def _staged(stage: Path) -> list[Path]:
    files = [p for p in stage.iterdir() if p.is_file() and p.name not in (RUN_FILE, STATE_FILE)
             and not p.name.startswith(".")]
    build = stage / BUILD / "reports"
    if build.is_dir():
        files += [p for p in build.iterdir() if p.is_file()]
    return sorted(files, key=lambda p: p.name)


def _reject(folder: Path, path: Path, problem: str) -> None:
    rejected = folder / INBOX / REJECTED
    rejected.mkdir(parents=True, exist_ok=True)
    target = rejected / path.name
    if target.exists():
        target = rejected / f"{datetime.now(timezone.utc):%Y%m%dT%H%M%S}-{path.name}"
    (rejected / f"{target.name}.error").write_text(problem.strip() + "\n", encoding="utf-8")
    os.rename(path, target)


def check_reports(settings: Settings, stage: Path, files: list[Path]) -> tuple[list[Path], list[tuple[Path, str]]]:
    """Each report read and composed on its own: the good ones, and the bad ones with their error."""
    from mailer.content.compose import compose_issue
    from mailer.content.reports import read_report

    good, bad = [], []
    for path in files:
        try:
            read_report(path, stage, settings.language)
            with tempfile.TemporaryDirectory(dir=stage) as tmp:
                alone = Path(tmp, "check")
                (alone / "reports").mkdir(parents=True)
                shutil.copyfile(path, alone / "reports" / path.name)
                (alone / "issue.toml").write_text('subject = "check"\n', encoding="utf-8")
                compose_issue(settings, alone)
            good.append(path)
        except (ComposeError, OSError) as exc:
            bad.append((path, " ".join(str(exc).replace(str(path.parent) + os.sep, "").split())))
    return good, bad


def issue_toml(folder: Path, local: datetime) -> str:
    """The digest template with {date} filled in, as TOML (strings written as JSON, which TOML reads)."""
    import tomllib

    from mailer.content.folders import ISSUE_FILE

    path = folder / ISSUE_FILE
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ComposeError(f"{path}: {exc}") from None
    data.pop("reports", None)
    data["date"] = f"{local:%Y-%m-%d}"
    for key in TEMPLATE_TEXT:
        if isinstance(data.get(key), str):
            data[key] = data[key].replace("{date}", f"{local.day} {local:%B %Y}")
    return "".join(f"{key} = {json.dumps(value, ensure_ascii=False)}\n" for key, value in data.items())


def _ours(target: Path, occurrence: str) -> bool:
    marker = target / MARKER
    return marker.is_file() and marker.read_text(encoding="utf-8").strip() == occurrence


def _put_back(path: Path, folder: Path) -> None:
    """Return a report to the inbox, never over a newer file of the same name."""
    inbox = folder / INBOX
    target, n = inbox / path.name, 1
    while target.exists():
        target, n = inbox / f"{path.stem}-{n}{path.suffix}", n + 1
    os.rename(path, target)


def _target(folder: Path, local: datetime, occurrence: str) -> Path:
    """The new issue's folder: <digest>-<date>, or with the time when that name is taken."""
    for name in (f"{folder.name}-{local:%Y-%m-%d}", f"{folder.name}-{local:%Y-%m-%d-%H%M%S}"):
        candidate = folder.parent / name
        if not candidate.exists() or _ours(candidate, occurrence):
            return candidate
    raise ComposeError(f"{folder.parent}: {folder.name}-{local:%Y-%m-%d-%H%M%S} already exists")


def finish(db: Database, settings: Settings, stage: Path) -> DigestRun:
    """Turn a staged run into its issue folder and send (or skip it); safe to call again after a crash."""
    folder = stage.parent.parent
    if (stage / STATE_FILE).is_file():
        state = json.loads((stage / STATE_FILE).read_text(encoding="utf-8"))
        return DigestRun(state["occurrence"], "claimed", f"run of {state['occurrence']} already {state['status']}")
    meta = json.loads((stage / RUN_FILE).read_text(encoding="utf-8"))
    occurrence = meta["occurrence"]
    when = datetime.strptime(occurrence, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    local = when.astimezone(ZoneInfo(meta["zone"]))
    run = DigestRun(occurrence, "sent", "")
    target = Path(meta["issue"]) if meta.get("issue") else None
    if target is None or not _ours(target, occurrence):
        good, bad = check_reports(settings, stage, _staged(stage))
        for path, problem in bad:
            _reject(folder, path, problem)
            log.warning("digest %s: report %s set aside: %s", folder.name, path.name, problem)
        run.rejected = [(p.name, e) for p, e in bad]
        if len(good) < meta["min_reports"]:
            for path in good:
                _put_back(path, folder)
            run.status = "skipped"
            run.message = (f"run of {occurrence} skipped: {len(good)} report(s), fewer than the "
                           f"{meta['min_reports']} needed; they wait for the next run")
            return _end(stage, run)
        try:
            toml = issue_toml(folder, local)
        except ComposeError as exc:
            for path in good:
                _put_back(path, folder)
            run.status, run.message = "failed", f"run of {occurrence} failed: {exc}; reports back in the inbox"
            return _end(stage, run)
        if target is None or target.exists():
            target = _target(folder, local, occurrence)
            meta["issue"] = str(target)
            _write_json(stage / RUN_FILE, meta)
        build = stage / BUILD
        (build / "reports").mkdir(parents=True, exist_ok=True)
        for path in good:
            if path.parent != build / "reports":
                os.rename(path, build / "reports" / path.name)
        (build / "issue.toml").write_text(toml, encoding="utf-8")
        (build / MARKER).write_text(occurrence + "\n", encoding="utf-8")
        try:
            os.rename(build, target)   # the issue appears whole, or not at all
        except OSError:                # another run of the same day took the name a moment ago
            target = _target(folder, local, occurrence)
            meta["issue"] = str(target)
            _write_json(stage / RUN_FILE, meta)
            os.rename(build, target)
    run.issue = target
    run.reports = sorted(p.name for p in (target / "reports").iterdir())
    try:
        return _end(stage, _make_send(db, settings, target, meta["lists"], run, meta.get("audience")))
    except MailerError as exc:   # compose or an unknown list: no send was made
        # nothing was sent: the reports go back to the inbox for a run after the template is fixed
        for name in run.reports:
            _put_back(target / "reports" / name, folder)
        shutil.rmtree(target)
        run.status, run.issue = "failed", None
        run.message = (f"run of {occurrence} failed: {' '.join(str(exc).split())}; "
                       f"{len(run.reports)} report(s) back in the inbox")
        return _end(stage, run)


def _make_send(db: Database, settings: Settings, target: Path, lists: list[str], run: DigestRun,
               audience: dict | None = None) -> DigestRun:
    """Compose the new issue and create its send (status sending) claiming the occurrence."""
    from mailer.content.compose import compose_issue

    composed = compose_issue(settings, target)
    try:
        with db.session() as session:
            run.send_id = ledger.create_send(session, composed, lists, SendStatus.SENDING,
                                             occurrence=run.occurrence, audience=audience).id
    except ledger.AlreadySent:
        with db.session() as session:
            run.send_id = session.scalar(select(SendList.send_id).join(Send, Send.id == SendList.send_id).where(
                SendList.issue_slug == target.name, SendList.occurrence == run.occurrence).order_by(Send.id))
        run.status = "claimed"
    run.message = (f"{target.name}: {len(run.reports)} report(s) as send {run.send_id}"
                   + (f"; {len(run.rejected)} set aside in inbox/rejected/" if run.rejected else ""))
    return run


def _end(stage: Path, run: DigestRun) -> DigestRun:
    _write_json(stage / STATE_FILE, {"occurrence": run.occurrence, "status": run.status, "message": run.message,
                                     "send_id": run.send_id, "at": utcnow().isoformat()})
    log.info("digest %s: %s", stage.parent.parent.name, run.message)
    return run


def unfinished(folder: Path) -> list[Path]:
    """The staged runs of *folder* that have not ended (a crash between claim and send)."""
    runs = folder / RUNS
    if not runs.is_dir():
        return []
    return sorted(p for p in runs.iterdir() if p.is_dir() and (p / RUN_FILE).is_file()
                  and not (p / STATE_FILE).is_file())


def recover(db: Database, settings: Settings) -> list[DigestRun]:
    """Finish every digest run left staged by a crash; call only where no other run can be live
    (the scheduler at start, holding the one-scheduler lock)."""
    with db.session() as session:
        paths = sorted(set(session.scalars(select(Schedule.issue_path).where(Schedule.kind == ScheduleKind.DIGEST))))
    done = []
    for path in paths:
        for stage in unfinished(Path(path)):
            log.warning("digest %s: run %s was interrupted; finishing it", Path(path).name, stage.name)
            done.append(finish(db, settings, stage))
    return done


def send_run(db: Database, settings: Settings, run: DigestRun) -> None:
    """Send a run's digest now (for callers outside the scheduler, which runs sends itself)."""
    from mailer.sending.loop import run_send

    if run.status == "sent" and run.send_id is not None:
        run_send(db, settings, run.send_id)
