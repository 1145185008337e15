"""How much the scheduler daemon's periodic sync costs, against the bare read it cannot avoid.

Run: .venv/bin/python -m bench.schedule_bench [N_ONCE] [N_CRON]

A SQLite database gets N_ONCE future one-off schedules and N_CRON recurring
ones. Measured in the same run:
- reference: reading every scheduled row through the ORM (what any sync must do);
- first sync: the daemon's sync pass on a running BlockingScheduler, adding every job;
- steady sync: the same pass when nothing changed (what runs every --sync-seconds);
- list: `schedule list` (list_schedules), which hashes every one-off's issue folder.
"""

from __future__ import annotations

import shutil
import statistics
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import select

from mailer.config import Settings
from mailer.db import Database
from mailer.models import Schedule, ScheduleKind, ScheduleStatus
from mailer.scheduling.plans import list_schedules
from mailer.scheduling.times import next_fire
from mailer.scheduling.daemon import Daemon

REPO = Path(__file__).resolve().parent.parent


def _timed(fn, repeat: int) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(n_once: int = 1000, n_cron: int = 100) -> None:
    root = Path(tempfile.mkdtemp(prefix="mailer-schedbench-"))
    try:
        shutil.copytree(REPO / "templates", root / "templates")
        shutil.copytree(REPO / "issues" / "example", root / "issues" / "example")
        settings = Settings(root=root, database_url=f"sqlite:///{root}/bench.db", secret_keys=("k",), hash_key="h")
        db = Database(settings.resolved_database_url)
        db.upgrade()
        now = datetime.now(timezone.utc)
        issue = str(root / "issues" / "example")
        with db.session() as session:
            session.add_all(Schedule(issue_path=issue, list_slugs=["news"], kind=ScheduleKind.ONCE,
                                     run_at=now + timedelta(days=1, minutes=i), timezone="Europe/London",
                                     source_hash="x") for i in range(n_once))
            session.add_all(Schedule(issue_path=issue, list_slugs=["news"], kind=ScheduleKind.CRON,
                                     cron=f"{i % 60} 9 * * FRI", timezone="Europe/London",
                                     next_run_at=next_fire(f"{i % 60} 9 * * FRI", "Europe/London", now))
                            for i in range(n_cron))

        def reference() -> None:
            with db.session() as session:
                list(session.scalars(select(Schedule).where(Schedule.status == ScheduleStatus.SCHEDULED)))

        daemon = Daemon(db, settings, sync_seconds=3600)
        thread = threading.Thread(target=daemon.scheduler.start, daemon=True)
        thread.start()
        while not daemon.scheduler.running:
            time.sleep(0.01)
        try:
            ref = _timed(reference, 7)
            start = time.perf_counter()
            daemon.sync()
            first = time.perf_counter() - start
            assert len(daemon.job_ids()) == n_once + n_cron
            steady = _timed(daemon.sync, 7)
            listing = _timed(lambda: list_schedules(db, settings), 3)
        finally:
            daemon.scheduler.shutdown(wait=False)
            thread.join(5)
        total = n_once + n_cron
        print(f"schedules: {n_once} one-off + {n_cron} recurring = {total}")
        print(f"reference (ORM read of the scheduled rows): {ref * 1000:8.1f} ms")
        print(f"first sync (adds {total} jobs):            {first * 1000:8.1f} ms  ({first / ref:.1f}x reference)")
        print(f"steady sync (nothing changed):             {steady * 1000:8.1f} ms  ({steady / ref:.1f}x reference)")
        print(f"schedule list (hashes each issue folder):  {listing * 1000:8.1f} ms  ({listing / ref:.1f}x reference)")
        db.dispose()
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:3]))
