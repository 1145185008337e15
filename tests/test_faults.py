"""Never twice, never lost (issue 15): every SMTP fault ends in one copy or an honest `unknown`.

A real `mailer send` (the CLI, in this process through CliRunner) talks to tests/faultsmtp.py,
a fault-injecting SMTP server written apart from tests/smtpserver.py. The audience is built
through the CLI (`lists add`, `subscribers import --confirmed`), outcomes are read from the
`delivery` table with plain SQL, and the server counts the copies whose final dot it accepted.

After the send, `--resume` until nothing is due and `--retry-failed` (never `--retry-unknown`):
every `sent` row has exactly 1 copy at the server, `failed`/`deferred`/`queued` rows 0,
`unknown` rows 0 or 1, and nobody got 2. Before issue 15's fix, a lost reply after the data
was resent: the seeded mix over 2,000 recipients gave 40 duplicates.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import create_engine, text

from mailer.cli import cli
from tests.helpers import TEST_ENV
from tests.faultsmtp import FaultMix, FaultServer

ISSUE = "issues/example"
TIMEOUT = 2.0          # smtp.timeout: the command timeout (and, today, the final-reply one)
STALL = 3.0            # a stall longer than TIMEOUT


@dataclass
class Mailer:
    """A project folder with its mailer.toml, driven through the real CLI."""

    root: Path
    db_url: str
    server: FaultServer

    def env(self) -> dict[str, str]:
        return dict(TEST_ENV)

    def cli(self, *args: str) -> Result:
        return CliRunner().invoke(cli, ["--root", str(self.root), *args], env=self.env(), catch_exceptions=False)

    def ok(self, *args: str) -> Result:
        result = self.cli(*args)
        assert result.exit_code == 0, (args, result.output, result.stderr)
        return result

    def send(self) -> Result:
        return self.cli("send", ISSUE, "--list", "news", "--yes", "--backend", "smtp")

    def rows(self) -> dict[str, tuple[str, int]]:
        """email -> (status, attempts) of every delivery row, by plain SQL."""
        engine = create_engine(self.db_url)
        try:
            with engine.connect() as conn:
                return {email: (status.lower(), attempts) for email, status, attempts in
                        conn.execute(text("SELECT email, status, attempts FROM delivery"))}
        finally:
            engine.dispose()

    def send_status(self) -> list[tuple[str, str]]:
        engine = create_engine(self.db_url)
        try:
            with engine.connect() as conn:
                return [(s.lower(), r) for s, r in conn.execute(text("SELECT status, status_reason FROM send"))]
        finally:
            engine.dispose()

    def finish(self, max_runs: int = 8) -> list[Result]:
        """`send --resume` while rows are due, then `--retry-failed` once; never --retry-unknown."""
        results = []
        for _ in range(max_runs):
            statuses = Counter(s for s, _ in self.rows().values())
            if not (statuses["queued"] or statuses["deferred"] or statuses["sending"]):
                break
            results.append(self.cli("send", ISSUE, "--resume", "--yes", "--backend", "smtp"))
        results.append(self.cli("send", ISSUE, "--retry-failed", "--yes", "--backend", "smtp"))
        return results


def write_config(root: Path, db_url: str, server: FaultServer, **extra: object) -> None:
    settings: dict[str, object] = {"database_url": db_url, "base_url": "https://news.example.org",
                                   "retry_base_seconds": 0, "batch_size": 50}
    smtp: dict[str, object] = {"host": server.host, "port": server.port, "security": "none",
                               "timeout": TIMEOUT, "connections": 2}
    for key, value in extra.items():
        (smtp if key.startswith("smtp_") else settings)[key.removeprefix("smtp_")] = value
    lines = [f"{k} = {_toml(v)}" for k, v in settings.items()] + ["", "[smtp]"]
    lines += [f"{k} = {_toml(v)}" for k, v in smtp.items()]
    (root / "mailer.toml").write_text("\n".join(lines) + "\n", encoding="utf-8")


def _toml(value: object) -> str:
    return f'"{value}"' if isinstance(value, str) else str(value).lower() if isinstance(value, bool) else str(value)


def emails(n: int) -> list[str]:
    return [f"user{i}@example.net" for i in range(n)]


def make_audience(mailer: Mailer, n: int) -> list[str]:
    """`db upgrade`, `lists add news`, `subscribers import --confirmed` of n addresses (consent rows)."""
    mailer.ok("db", "upgrade")
    mailer.ok("lists", "add", "news", "News", "--single-opt-in")
    addresses = emails(n)
    csv = mailer.root / "subscribers" / "audience.csv"
    csv.write_text("email,name\n" + "".join(f"{a},Reader {i}\n" for i, a in enumerate(addresses)), encoding="utf-8")
    mailer.ok("subscribers", "import", str(csv), "--list", "news", "--confirmed")
    return addresses


@pytest.fixture
def fault_server() -> Iterator[FaultServer]:
    server = FaultServer().start()
    yield server
    server.stop()


def new_mailer(project: Path, db_url: str, server: FaultServer, n: int, **extra: object) -> tuple[Mailer, list[str]]:
    write_config(project, db_url, server, **extra)
    mailer = Mailer(project, db_url, server)
    return mailer, make_audience(mailer, n)


@dataclass
class Tally:
    sent: int = 0
    unknown: int = 0
    failed: int = 0
    left: int = 0              # queued, deferred or sending after the last resume
    duplicates: int = 0        # recipients with 2 or more copies
    lost: int = 0              # recorded sent without a copy, or a copy nobody was told about (failed/deferred)
    wrong: list[str] | None = None

    def line(self, label: str, total: int) -> str:
        return (f"fault mix [{label}]: {total} recipients: duplicates {self.duplicates}, unknown {self.unknown}, "
                f"lost {self.lost}, sent {self.sent}, failed {self.failed}, left {self.left}")


def tally(mailer: Mailer, addresses: list[str]) -> Tally:
    """Compare the ledger with the server's copies; `wrong` lists every row breaking the rule."""
    rows, copies = mailer.rows(), mailer.server.received
    t, wrong = Tally(), []
    assert set(rows) == set(addresses)
    for email, (status, _) in rows.items():
        n = copies[email]
        if status == "sent":
            t.sent += 1
            t.lost += n == 0
            ok = n == 1
        elif status == "unknown":
            t.unknown += 1
            ok = n <= 1
        else:
            t.failed += status == "failed"
            t.left += status in ("queued", "deferred", "sending")
            t.lost += n > 0
            ok = n == 0
        if not ok:
            wrong.append(f"{email}: {status} with {n} copies")
    t.duplicates = sum(1 for n in copies.values() if n >= 2)
    t.wrong = wrong
    return t


def assert_one_line_error(result: Result) -> None:
    """A run that did not finish says why in one `error:` line (a pause, a refused resume)."""
    if result.exit_code != 0:
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("error: "), (result.exit_code, result.stderr)


def assert_one_copy_or_unknown(mailer: Mailer, addresses: list[str]) -> Tally:
    t = tally(mailer, addresses)
    assert not t.wrong, f"{len(t.wrong)} rows break the rule, e.g. {t.wrong[:5]}"
    assert t.duplicates == 0
    return t


# -- one fault at a time -------------------------------------------------------------------------
N = 30
TARGET = "user7@example.net"

# (id, faults to inject: (stage, action, kwargs)); each hits TARGET once unless it says otherwise
FAULTS = {
    "greeting-421": [("greeting", "reply", {"code": 421, "times": 2})],
    "4xx-MAIL": [("MAIL", "reply", {"code": 451, "times": 1, "after": 5})],
    "4xx-RCPT": [("RCPT", "reply", {"code": 450, "recipient": TARGET})],
    "4xx-DATA": [("DATA", "reply", {"code": 451, "recipient": TARGET})],
    "4xx-EOD": [("EOD", "reply", {"code": 452, "recipient": TARGET})],
    "421-RCPT": [("RCPT", "reply", {"code": 421, "recipient": TARGET})],
    "5xx-MAIL": [("MAIL", "reply", {"code": 550, "times": 1, "after": 5})],
    "5xx-RCPT": [("RCPT", "reply", {"code": 550, "recipient": TARGET})],
    "5xx-DATA": [("DATA", "reply", {"code": 554, "recipient": TARGET})],
    "5xx-EOD": [("EOD", "reply", {"code": 550, "recipient": TARGET})],
    "drop-MAIL": [("MAIL", "drop", {"times": 1, "after": 5})],
    "drop-RCPT": [("RCPT", "drop", {"recipient": TARGET})],
    "drop-DATA": [("DATA", "drop", {"recipient": TARGET})],
    "reset-RCPT": [("RCPT", "reset", {"recipient": TARGET})],
    "stall-RCPT": [("RCPT", "stall", {"recipient": TARGET, "seconds": STALL})],
    "stall-DATA": [("DATA", "stall", {"recipient": TARGET, "seconds": STALL, "then": "drop"})],
    "drop-EOD": [("EOD", "drop", {"recipient": TARGET})],
    "reset-EOD": [("EOD", "reset", {"recipient": TARGET})],
    "stall-EOD": [("EOD", "stall", {"recipient": TARGET, "seconds": STALL})],     # then 250, late
    "stall-EOD-then-drop": [("EOD", "stall", {"recipient": TARGET, "seconds": STALL, "then": "drop"})],
}
AFTER_DATA = {"drop-EOD", "reset-EOD", "stall-EOD", "stall-EOD-then-drop"}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_each_fault_ends_in_one_copy_or_unknown(fault, project, fault_server):
    """One fault, then send / --resume / --retry-failed: the ledger and the server's copies agree."""
    mailer, addresses = new_mailer(project, f"sqlite:///{project}/subscribers/mailer.db", fault_server, N)
    for stage, action, kwargs in FAULTS[fault]:
        fault_server.inject(stage, action, **kwargs)
    for result in [mailer.send(), *mailer.finish()]:
        assert_one_line_error(result)

    fired = sum(fault_server.fired.values())
    assert fired >= 1, f"the fault {fault} never fired"
    rows = mailer.rows()
    assert_one_copy_or_unknown(mailer, addresses)
    target, _ = rows[TARGET]
    if fault in ("5xx-RCPT", "5xx-EOD"):
        assert target == "failed"                       # 5.1.1: a hard bounce, no copy
    elif fault == "stall-EOD":
        assert target == "sent"                         # a slow 250 is waited for (RFC 5321: 10 minutes)
    elif fault in AFTER_DATA:
        assert target == "unknown"                      # the server has it, maybe: never resent
        status = mailer.ok("status", ISSUE)
        assert TARGET in status.output and "unknown" in status.output
    elif not fault.endswith("MAIL"):
        assert target == "sent"                         # refused or lost before the data: retried, one copy
    if fault == "greeting-421":
        assert all(status == "sent" for status, _ in rows.values())


def test_421_on_reconnect_keeps_rows_queued_and_charges_no_attempt(project, fault_server):
    """Mid-send both sessions get 421 and the next greetings say 421: the sender reconnects with
    backoff; the first run sends everyone once and no row counts an attempt the server never saw."""
    mailer, addresses = new_mailer(project, f"sqlite:///{project}/subscribers/mailer.db", fault_server, 120)
    fault_server.inject("MAIL", "reply", code=421, times=2, after=20)
    fault_server.inject("greeting", "reply", code=421, times=4, after=20)
    first = mailer.send()
    assert fault_server.fired[("greeting", 421)] >= 1
    rows = mailer.rows()
    charged = [e for e, (_, attempts) in rows.items() if attempts > fault_server.stats.rcpt[e]]
    assert not charged, f"{len(charged)} rows charged attempts the server never saw, e.g. {charged[:3]}"
    assert first.exit_code == 0, first.output + first.stderr
    assert all(status == "sent" for status, _ in rows.values()), Counter(s for s, _ in rows.values())
    mailer.finish()
    assert_one_copy_or_unknown(mailer, addresses)


def test_421_on_reconnect_resumes_to_one_copy_each(project, fault_server):
    """The same 421 storm: after --resume every subscriber has exactly one copy (holds today)."""
    mailer, addresses = new_mailer(project, f"sqlite:///{project}/subscribers/mailer.db", fault_server, 120)
    fault_server.inject("MAIL", "reply", code=421, times=2, after=20)
    fault_server.inject("greeting", "reply", code=421, times=4, after=20)
    mailer.send()
    mailer.finish()
    t = assert_one_copy_or_unknown(mailer, addresses)
    assert t.sent == len(addresses)


# -- the random mix --------------------------------------------------------------------------------
MIX_N = 2000
MIX_SEED = 15


def run_mix(mailer: Mailer, addresses: list[str], label: str, capsys: pytest.CaptureFixture[str]) -> Tally:
    """The mix over *addresses*: send, resume, --retry-failed; prints the figures past pytest's capture."""
    started = time.monotonic()
    mailer.server.mix = FaultMix(seed=MIX_SEED, rate=0.06, stall_seconds=STALL, greeting_rate=0.05)
    mailer.send()
    mailer.finish(max_runs=12)
    t = tally(mailer, addresses)
    fired = dict(sorted(Counter({f"{k[0]}:{k[1]}": v for k, v in mailer.server.fired.items()}).items()))
    with capsys.disabled():
        print(f"\n{t.line(label, len(addresses))}; {time.monotonic() - started:.1f}s; faults fired {fired}")
    return t


def test_fault_mix_sqlite(project, fault_server, capsys):
    mailer, addresses = new_mailer(project, f"sqlite:///{project}/subscribers/mailer.db", fault_server, MIX_N,
                                   batch_size=100)
    t = run_mix(mailer, addresses, "sqlite", capsys)
    assert sum(mailer.server.fired.values()) > MIX_N * 0.03
    assert not t.wrong, f"{len(t.wrong)} rows break the rule, e.g. {t.wrong[:5]}"
    assert t.duplicates == 0 and t.left == 0


@pytest.mark.postgres
def test_fault_mix_postgresql(project, fault_server, postgres, capsys):
    mailer, addresses = new_mailer(project, postgres.new_database(), fault_server, MIX_N, batch_size=100)
    t = run_mix(mailer, addresses, "postgresql", capsys)
    assert sum(mailer.server.fired.values()) > MIX_N * 0.03
    assert not t.wrong, f"{len(t.wrong)} rows break the rule, e.g. {t.wrong[:5]}"
    assert t.duplicates == 0 and t.left == 0
