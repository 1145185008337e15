"""Helpers shared by the scheduling tests: lists with subscribers, counting mails, the scheduler process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from mailer.config import Settings
from mailer.db import Database
from mailer.models import ConsentSource, MailingList
from mailer.people.subscriptions import ConsentInfo, normalize_email, subscribe
from tests.helpers import wait_for

REPO = Path(__file__).resolve().parent.parent
MAILER = str(REPO / ".venv" / "bin" / "mailer")
if not os.path.exists(MAILER):
    MAILER = str(Path(sys.executable).parent / "mailer")


def add_list(db: Database, settings: Settings, slug: str = "news", subscribers: int = 3) -> None:
    """A list with *subscribers* confirmed addresses (admin consent)."""
    with db.session() as session:
        mlist = MailingList(slug=slug, name=slug.title())
        session.add(mlist)
        session.flush()
        for i in range(subscribers):
            subscribe(session, settings, mlist, normalize_email(f"person{i}@example.org"), confirmed=True,
                      consent=ConsentInfo(ConsentSource.ADMIN))


def emls(project: Path) -> list[Path]:
    """The mails the file backend wrote."""
    return sorted((project / "outbox").rglob("*.eml"))


def env_for(project: Path, db_url: str, **extra: str) -> dict[str, str]:
    """The environment of a `mailer` subprocess on this project and database (file backend)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILER_")}
    env.update(MAILER_ROOT=str(project), MAILER_DATABASE_URL=db_url, MAILER_BACKEND="file",
               MAILER_SECRET_KEYS="test-secret-key-newest", MAILER_HASH_KEY="test-hash-key",
               MAILER_BASE_URL="https://news.example.org", PYTHONUNBUFFERED="1")
    env.update(extra)
    return env


class Daemon:
    """A `mailer scheduler` subprocess whose log is read as it goes."""

    def __init__(self, env: dict[str, str], *args: str, log: Path) -> None:
        self.log_path = log
        self._log = open(log, "ab")
        self.proc = subprocess.Popen([MAILER, "scheduler", "--sync-seconds", "0.5", *args], env=env,
                                     stdout=self._log, stderr=subprocess.STDOUT, cwd=env["MAILER_ROOT"])

    @property
    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def wait_log(self, text: str, timeout: float = 15.0) -> str:
        wait_for(lambda: text in self.log or self.proc.poll() is not None, timeout, f"log line {text!r}")
        assert text in self.log, self.log
        return self.log

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        finally:
            self._log.close()

