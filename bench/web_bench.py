"""Sign-up POSTs under load with the production server (waitress), measured with wrk on loopback.

Starts `mailer serve --production` in a subprocess on a fresh SQLite database
(or PostgreSQL with --postgres), fetches one form token, then has wrk POST
sign-ups with a new address each. Reports req/s and p99, next to a reference
measured in the same run: a bare WSGI "hello" app under waitress with the
same threads (the server's own ceiling). The request stores one intake row;
the app's queue thread applies the sign-ups (subscription, consent, queued
confirmation mail) and writes the mails (file backend) meanwhile, pausing
between batches while requests come in; the backlog left is reported.

    .venv/bin/python bench/web_bench.py [--seconds 10] [--connections 16] [--threads 8] [--postgres]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.pgserver import PostgresServer, free_port  # noqa: E402

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--postgres", action="store_true", help="use a temporary PostgreSQL instead of SQLite")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed (apt-get install wrk)")
    root = Path(tempfile.mkdtemp(prefix="mailer-webbench-"))
    pg = PostgresServer().start() if args.postgres else None
    procs: list[subprocess.Popen] = []
    try:
        db_url = pg.new_database() if pg else f"sqlite:///{root}/bench.db"
        env = {**os.environ, "MAILER_ROOT": str(root), "MAILER_DATABASE_URL": db_url,
               "MAILER_SECRET_KEYS": "bench-only-key", "MAILER_HASH_KEY": "bench-only-key",
               "MAILER_BACKEND": "file", "MAILER_WEB_RATE_PER_IP_PER_HOUR": "0",
               "MAILER_TEMPLATES_PATH": str(REPO / "templates")}
        subprocess.run([sys.executable, "-c", (
            "from mailer.db import Database; from mailer.models import MailingList;"
            f"db = Database({db_url!r}); db.upgrade();"
            "s = db.session().__enter__(); s.add(MailingList(slug='news', name='News')); s.commit()")],
            check=True, env=env)

        hello_port = free_port()
        (root / "hello.py").write_text(HELLO)
        # server output goes to files: a pipe nobody reads fills up under load (waitress warns about
        # its task queue) and then blocks every thread that logs
        hello_log = root / "hello.log"
        with hello_log.open("wb") as out:
            hello = subprocess.Popen([sys.executable, "-m", "waitress", f"--threads={args.threads}",
                                      f"--listen=127.0.0.1:{hello_port}", "hello:app"],
                                     cwd=root, stdout=subprocess.DEVNULL, stderr=out)
        procs.append(hello)
        wait_up(f"http://127.0.0.1:{hello_port}/", hello, hello_log)
        ref_rps, ref_p99, _ = wrk(f"http://127.0.0.1:{hello_port}/", args.seconds, args.connections, None)
        stop(hello)

        port = free_port()
        server_log = root / "server.log"
        with server_log.open("wb") as out:
            server = subprocess.Popen([sys.executable, "-m", "mailer", "serve", "--production", "--port",
                                       str(port), "--threads", str(args.threads)],
                                      env=env, stdout=subprocess.DEVNULL, stderr=out)
        procs.append(server)
        base = f"http://127.0.0.1:{port}"
        wait_up(f"{base}/subscribe/news", server, server_log)
        form = urllib.request.urlopen(f"{base}/subscribe/news").read().decode()
        token = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)
        script = root / "signup.lua"
        script.write_text(f'TOKEN = "{token}"\n' + LUA)
        rps, p99, non2xx = wrk(f"{base}/subscribe/news", args.seconds, args.connections, script)
        time.sleep(1)
        stop(server)

        from mailer.db import Database
        from sqlalchemy import text

        db = Database(db_url)
        with db.engine.connect() as conn:
            subscribers = conn.execute(text("select count(*) from subscriber")).scalar()
            intake = conn.execute(text("select count(*) from signup_intake")).scalar()
            backlog = conn.execute(text("select count(*) from signup_intake where status='new'")).scalar()
            queued = conn.execute(text("select count(*) from queued_mail")).scalar()
            sent = conn.execute(text("select count(*) from queued_mail where status='sent'")).scalar()
        db.dispose()
        mails = len(list((root / "outbox").glob("*.eml"))) if (root / "outbox").exists() else 0

        db_name = "PostgreSQL" if pg else "SQLite"
        print(f"web sign-up bench: waitress {args.threads} threads, wrk 2 threads x {args.connections} "
              f"connections, {args.seconds} s, {db_name}")
        print(f"  reference (bare WSGI hello under waitress): {ref_rps:8.0f} req/s   p99 {ref_p99:6.1f} ms")
        print(f"  sign-up POST (validate, CSRF, rate limits, one intake row): "
              f"{rps:8.0f} req/s   p99 {p99:6.1f} ms   non-2xx {non2xx}")
        print(f"  ratio to reference: {rps / ref_rps:.2f}   target >= 500 req/s and p99 <= 50 ms: "
              f"{'met' if rps >= 500 and p99 <= 50 else 'NOT met'}")
        print(f"  rows: {intake} sign-ups received, {backlog} not yet applied when the server stopped; "
              f"{subscribers} subscribers, {queued} confirmation mails queued, {sent} sent by the "
              f"queue thread during the run ({mails} .eml files)")
    finally:
        for proc in procs:
            if proc.poll() is None:
                stop(proc)
        if pg:
            pg.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
