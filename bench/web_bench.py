"""Sign-up POSTs under load with the production server (waitress) on loopback: most req/s, and latency at a set rate.

Starts the production shape on a fresh SQLite database (or PostgreSQL with
--postgres): `mailer serve --production` with ``web.background_thread = false``
and a `mailer worker` process next to it, which applies the sign-ups
(subscription, consent, queued confirmation mail) and writes the mails (file
backend) while the load runs, on the same two cores (--background-thread: the
single-process default instead, the web process's own thread doing that work).
It fetches one form token, then POSTs sign-ups with a new address each, twice,
each time on a fresh database, server and worker:

- closed loop (wrk, N connections, each sends its next request when the last
  is answered): the most req/s. Its p99 depends on N (N / throughput is the
  mean wait), so it says little about latency;
- open loop (`open_loop` below, --rate req/s): requests are due at fixed
  times whether or not earlier ones were answered, and each latency counts
  from the time it was due, so a stall shows in the figures instead of
  delaying the requests that would have seen it (no coordinated omission).
  Reports p50, p99 and max, and how late the generator itself sent.

Both next to a reference measured in the same run the same way: a bare WSGI
"hello" app under waitress with the same threads (the server's own ceiling).
The request stores one intake row. Reported per measurement: sign-ups
received, how many were applied while the load ran, how long the backlog took
to drain after it (all applied, every confirmation mail sent), and the CPU
seconds the web and worker processes used.

    .venv/bin/python bench/web_bench.py [--seconds 10] [--connections 16] [--threads 8] [--rate 500] [--postgres]
                                        [--background-thread]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.helpers import free_port  # noqa: E402
from tests.pgserver import PostgresServer  # noqa: E402

LUA = r"""
counter = 0
local threads = {}
function setup(thread) thread:set("tid", #threads + 1); table.insert(threads, thread) end
function request()
  counter = counter + 1
  local body = "csrf_token=" .. TOKEN .. "&email=b" .. tid .. "x" .. counter .. "%40example.org&name=Bench&consent=yes"
  return wrk.format("POST", "/subscribe/news", {["Content-Type"] = "application/x-www-form-urlencoded"}, body)
end
"""
TIMEOUT_S = 10.0
HELLO = "def app(environ, start_response):\n    start_response('200 OK', [('Content-Type', 'text/plain')])\n    return [b'hello']\n"


def wait_up(url: str, proc: subprocess.Popen, log: Path) -> None:
    for _ in range(200):
        if proc.poll() is not None:
            raise SystemExit(f"server exited: {log.read_text()[-2000:]}")
        try:
            urllib.request.urlopen(url, timeout=1).read()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"server at {url} did not come up")


def wrk(url: str, seconds: int, connections: int, script: Path | None) -> tuple[float, float, int]:
    cmd = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "5s"]
    if script:
        cmd += ["-s", str(script)]
    out = subprocess.run(cmd + [url], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p99_value, unit = re.search(r"99%\s+([\d.]+)(us|ms|s)", out).groups()
    p99 = float(p99_value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return rps, p99, int(non2xx.group(1)) if non2xx else 0


def stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


@dataclass
class OpenLoop:
    sent: int
    non2xx: int
    p50: float
    p99: float
    worst: float
    late_p99: float     # how late the generator itself sent (its own lag, included in the latencies)


async def _open_loop(port: int, request: Callable[[int], bytes], rate: float, seconds: float,
                     warmup: float, max_connections: int) -> OpenLoop:
    loop = asyncio.get_running_loop()
    idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    free = asyncio.Condition()
    opened = 0
    latencies: list[float] = []
    lateness: list[float] = []
    non2xx = 0

    async def connection() -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        nonlocal opened
        async with free:
            while not idle and opened >= max_connections:
                await free.wait()
            if idle:
                return idle.pop()
            opened += 1
        return await asyncio.open_connection("127.0.0.1", port)

    async def give_back(conn: tuple[asyncio.StreamReader, asyncio.StreamWriter]) -> None:
        async with free:
            idle.append(conn)
            free.notify()

    async def exchange(conn: tuple[asyncio.StreamReader, asyncio.StreamWriter], data: bytes) -> bool:
        reader, writer = conn
        writer.write(data)
        status = await reader.readline()
        length = 0
        while (line := await reader.readline()) not in (b"\r\n", b""):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        await reader.readexactly(length)
        return status.split(b" ", 2)[1].startswith(b"2")

    async def one(i: int, due: float) -> None:
        nonlocal non2xx, opened
        await asyncio.sleep(due - loop.time())
        counted = due >= start + warmup
        if counted:
            lateness.append(loop.time() - due)
        conn = await connection()
        try:
            ok = await asyncio.wait_for(exchange(conn, request(i)), TIMEOUT_S)
        except (OSError, ValueError, IndexError, asyncio.IncompleteReadError, asyncio.TimeoutError):
            ok = False
            conn[1].close()
            async with free:
                opened -= 1
                free.notify()
        else:
            await give_back(conn)
        if counted:
            latencies.append(loop.time() - due)
            non2xx += not ok

    start = loop.time() + 0.2
    total = int(rate * (seconds + warmup))
    await asyncio.gather(*(one(i, start + i / rate) for i in range(total)))
    for _, writer in idle:
        writer.close()
    latencies.sort()
    lateness.sort()
    at = lambda values, q: values[min(len(values) - 1, int(q * len(values)))] * 1000  # noqa: E731
    return OpenLoop(len(latencies), non2xx, at(latencies, 0.5), at(latencies, 0.99), latencies[-1] * 1000,
                    at(lateness, 0.99))


def open_loop(port: int, request: Callable[[int], bytes], rate: float, seconds: float,
              max_connections: int = 64) -> OpenLoop:
    """Send *rate* requests a second for *seconds* (after a 1 s warm-up not counted), each due at a fixed time.

    At most *max_connections* (keep-alive) at once, below waitress's limit of 100: beyond it
    waitress stops accepting and the rest would wait for idle connections to time out. A request
    due while all are busy waits for one, and that wait counts in its latency.
    """
    return asyncio.run(_open_loop(port, request, rate, seconds, 1.0, max_connections))


def hello_request(i: int) -> bytes:
    return b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


def signup_request(token: str) -> Callable[[int], bytes]:
    def build(i: int) -> bytes:
        body = f"csrf_token={token}&email=o{i}%40example.org&name=Bench&consent=yes".encode()
        return (b"POST /subscribe/news HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                b"Content-Type: application/x-www-form-urlencoded\r\n"
                b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
    return build


@dataclass
class Rows:
    intake: int
    applied: int
    subscribers: int
    queued: int
    sent: int
    mails: int


def count_rows(db_url: str, outbox: Path) -> Rows:
    from sqlalchemy import text

    from mailer.db import Database

    db = Database(db_url)
    with db.engine.connect() as conn:
        count = lambda sql: conn.execute(text(sql)).scalar()  # noqa: E731
        rows = Rows(count("select count(*) from signup_intake"),
                    count("select count(*) from signup_intake where status in ('done', 'failed')"),
                    count("select count(*) from subscriber"), count("select count(*) from queued_mail"),
                    count("select count(*) from queued_mail where status='sent'"),
                    len(list(outbox.glob("*.eml"))) if outbox.exists() else 0)
    db.dispose()
    return rows


def cpu_seconds(proc: subprocess.Popen) -> float:
    """User + system CPU time of a running process so far (Linux /proc)."""
    fields = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Run:
    """The app's processes for one measurement, and what they did."""

    server: subprocess.Popen
    worker: subprocess.Popen | None
    db_url: str
    root: Path
    token: str
    report: str = ""

    def finish(self, load_s: float, drain_timeout: float = 600.0) -> None:
        """After the load: count what was applied during it, wait for the backlog to drain, stop."""
        during = count_rows(self.db_url, self.root / "outbox")
        cpu = {name: cpu_seconds(proc) for name, proc in (("web", self.server), ("worker", self.worker)) if proc}
        started = time.monotonic()
        rows = during
        while (rows.applied < rows.intake or rows.sent < rows.queued) and time.monotonic() - started < drain_timeout:
            time.sleep(0.2)
            rows = count_rows(self.db_url, self.root / "outbox")
        drained = time.monotonic() - started
        left = rows.intake - rows.applied
        for proc in (self.server, self.worker):
            if proc:
                stop(proc)
        self.report = (
            f"{during.intake} sign-ups received; applied during the load: {during.applied} "
            f"({during.applied / load_s:.0f}/s), confirmation mails sent: {during.sent}; backlog "
            + (f"drained {drained:.1f} s after the load" if not left and rows.sent >= rows.queued
               else f"NOT drained after {drained:.0f} s ({left} sign-ups left)")
            + f" ({rows.subscribers} subscribers, {rows.mails} .eml files); CPU during the load: "
            + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in cpu.items()))


class Bench:
    """Servers for one run: the hello reference, and the app on a fresh database per measurement."""

    def __init__(self, args: argparse.Namespace, root: Path, pg: PostgresServer | None) -> None:
        self.args, self.root, self.pg = args, root, pg
        self.runs = 0

    def hello(self) -> subprocess.Popen:
        port = free_port()
        (self.root / "hello.py").write_text(HELLO)
        # server output goes to files: a pipe nobody reads fills up under load (waitress warns about
        # its task queue) and then blocks every thread that logs
        log = self.root / "hello.log"
        with log.open("wb") as out:
            proc = subprocess.Popen([sys.executable, "-m", "waitress", f"--threads={self.args.threads}",
                                     f"--listen=127.0.0.1:{port}", "hello:app"],
                                    cwd=self.root, stdout=subprocess.DEVNULL, stderr=out)
        proc.port = port  # type: ignore[attr-defined]
        wait_up(f"http://127.0.0.1:{port}/", proc, log)
        return proc

    def app(self) -> Run:
        """The app on a new database: the web server, the worker (unless --background-thread), a form token."""
        self.runs += 1
        root = self.root / f"run{self.runs}"
        root.mkdir()
        db_url = self.pg.new_database() if self.pg else f"sqlite:///{root}/bench.db"
        env = {**os.environ, "MAILER_ROOT": str(root), "MAILER_DATABASE_URL": db_url,
               "MAILER_SECRET_KEYS": "bench-only-key", "MAILER_HASH_KEY": "bench-only-key",
               "MAILER_BACKEND": "file", "MAILER_WEB_RATE_PER_IP_PER_HOUR": "0",
               "MAILER_TEMPLATES_PATH": str(REPO / "templates"),
               "MAILER_WEB_BACKGROUND_THREAD": "true" if self.args.background_thread else "false"}
        subprocess.run([sys.executable, "-c", (
            "from mailer.db import Database; from mailer.models import MailingList;"
            f"db = Database({db_url!r}); db.upgrade();"
            "s = db.session().__enter__(); s.add(MailingList(slug='news', name='News')); s.commit()")],
            check=True, env=env)
        port = free_port()
        log = root / "server.log"
        with log.open("wb") as out:
            proc = subprocess.Popen([sys.executable, "-m", "mailer", "serve", "--production", "--port",
                                     str(port), "--threads", str(self.args.threads)],
                                    env=env, stdout=subprocess.DEVNULL, stderr=out)
        proc.port = port  # type: ignore[attr-defined]
        base = f"http://127.0.0.1:{port}"
        wait_up(f"{base}/subscribe/news", proc, log)
        worker = None
        if not self.args.background_thread:
            with (root / "worker.log").open("wb") as out:
                nice = ["nice", "-n", str(self.args.worker_nice)] if self.args.worker_nice else []
                worker = subprocess.Popen([*nice, sys.executable, "-m", "mailer", "worker", "--poll", "1"],
                                          env=env, stdout=subprocess.DEVNULL, stderr=out)
        form = urllib.request.urlopen(f"{base}/subscribe/news").read().decode()
        token = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)
        return Run(proc, worker, db_url, root, token)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16, help="wrk connections (closed loop)")
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--rate", type=float, default=500.0, help="req/s offered in the open-loop measurement")
    parser.add_argument("--postgres", action="store_true", help="use a temporary PostgreSQL instead of SQLite")
    parser.add_argument("--background-thread", action="store_true",
                        help="the single-process default: the web process applies sign-ups itself, no worker")
    parser.add_argument("--worker-nice", type=int, default=0,
                        help="run the worker under `nice -n N` (on SQLite this made the tail worse: a worker put "
                             "off the CPU while it holds the write lock stalls the web process's commits)")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed (apt-get install wrk)")
    root = Path(tempfile.mkdtemp(prefix="mailer-webbench-"))
    pg = PostgresServer().start() if args.postgres else None
    bench = Bench(args, root, pg)
    procs: list[subprocess.Popen] = []
    try:
        hello = bench.hello()
        procs.append(hello)
        ref_rps, ref_p99, _ = wrk(f"http://127.0.0.1:{hello.port}/", args.seconds, args.connections, None)
        ref_open = open_loop(hello.port, hello_request, args.rate, args.seconds)
        stop(hello)

        closed = bench.app()
        procs += [p for p in (closed.server, closed.worker) if p]
        script = root / "signup.lua"
        script.write_text(f'TOKEN = "{closed.token}"\n' + LUA)
        rps, p99, non2xx = wrk(f"http://127.0.0.1:{closed.server.port}/subscribe/news", args.seconds,
                               args.connections, script)
        closed.finish(args.seconds)

        opened = bench.app()
        procs += [p for p in (opened.server, opened.worker) if p]
        signup_open = open_loop(opened.server.port, signup_request(opened.token), args.rate, args.seconds)
        opened.finish(args.seconds + 1.0)

        db_name = "PostgreSQL" if pg else "SQLite"
        rate = f"{args.rate:.0f} req/s offered"
        shape = ("the web process's own background thread applies sign-ups" if args.background_thread else
                 "web.background_thread = false + a `mailer worker` process applying sign-ups")
        print(f"web sign-up bench: waitress {args.threads} threads, {db_name}, {args.seconds} s each; closed loop: "
              f"wrk 2 threads x {args.connections} connections; open loop: {rate} (fixed schedule); {shape}")
        print(f"  reference (bare WSGI hello under waitress): closed {ref_rps:8.0f} req/s   p99 {ref_p99:6.1f} ms"
              f" | {rate}: p50 {ref_open.p50:6.1f} ms   p99 {ref_open.p99:6.1f} ms   max {ref_open.worst:6.1f} ms")
        print("  sign-up POST (validate, CSRF, rate limits, one intake row):")
        print(f"    closed loop: {rps:8.0f} req/s   p99 {p99:6.1f} ms   non-2xx {non2xx}")
        print(f"    {rate}: p50 {signup_open.p50:6.1f} ms   p99 {signup_open.p99:6.1f} ms   max "
              f"{signup_open.worst:6.1f} ms   non-2xx {signup_open.non2xx}   ({signup_open.sent} requests; "
              f"generator sent p99 {signup_open.late_p99:.1f} ms late)")
        print(f"  ratio to reference: {rps / ref_rps:.2f}   target >= 500 req/s (closed loop) and p99 <= 50 ms "
              f"at {rate}: {'met' if rps >= 500 and signup_open.p99 <= 50 else 'NOT met'}")
        print(f"  closed loop: {closed.report}")
        print(f"  open loop:   {opened.report}")
    finally:
        for proc in procs:
            if proc.poll() is None:
                stop(proc)
        if pg:
            pg.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
