"""The editor's desk under 10 concurrent editors, with 100,000 subscribers: p50/p95/p99 per page.

    .venv/bin/python bench/desk_bench.py [--subscribers 100000] [--editors 10] [--seconds 10]
                                         [--threads 8] [--no-postgres] [--only search ...]

For SQLite, then PostgreSQL (started in a temp folder, as the tests do): a fresh project with
N subscribers (mailer's own import: all confirmed on `news`, the first fifth also pending on
`bulletin`), 30 issue folders, one of them sent to the whole list (N delivery rows in the
ledger) and one scheduled; the app served as in production (`mailer serve --production`, i.e.
waitress with 8 threads, `web.background_thread = false`), and E desk accounts, each logged in
with its own session. Then, page by page, E client threads (one keep-alive connection and one
session cookie each) request the page back to back for S seconds (a closed loop: each editor
asks again as soon as it has the answer, with no time to read, which is harsher than people
clicking), and the latencies of the answers are reported as p50/p95/p99 with requests/s.

Pages: the dashboard `/desk/`, an issue page `/desk/issues/<slug>`, the subscriber search
`/desk/subscribers?...` (cycling through SEARCHES: an exact address, a name, an address prefix, a
broad name prefix, a miss and a list-and-status filter), the lists and schedules pages, the segments
page (five saved segments, each counted on every view: SEGMENTS), one segment's page (its count and ten
addresses), the digests page and one digest's page (its inbox of the example's reports and the next
digest's preview); a page the app does not serve yet (404) is reported as such. The reference, measured the same way in the same run: the
public landing page `/` and a static file `/static/site.css`. Targets (issue 13): p95 <= 100 ms
for pages, <= 50 ms for the search. Client and server share the machine's cores.
"""

from __future__ import annotations

import argparse
import http.client
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.helpers import free_port  # noqa: E402

KEY = "bench-only-key"
PASSWORD = "bench only, not a secret"
ISSUES = 30
# what editors type: an exact address, a whole name, an address prefix (111 match: a full page), a
# name prefix that 11,111 names begin with (the search reads the first 500), a miss, and a list and
# status filter without a search
SEARCHES = ("q=p4242%40example.net", "q=Person+31337", "q=p777", "q=person+9", "q=nobody-here",
            "list=bulletin&status=pending")
# saved segments the segments page counts on every view: a list, a date, an address part, a tag, a mix
SEGMENTS = (("bulletin", "list = bulletin"), ("new", "created >= 2026-01-01"), ("nines", 'email contains "p9"'),
            ("volunteers", "tag = volunteer"), ("mix", 'list = news and not status = pending and name contains "Person 1"'))
TARGET_MS = {"search": 50.0}
PAGE_TARGET_MS = 100.0


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000 if ordered else float("nan")


def populate(root: Path, db_url: str, base_url: str, n: int, editors: int) -> list[str]:
    """The project and database; returns the session cookie values of *editors* logged-in accounts."""
    from mailer.config import Settings
    from mailer.content.compose import compose_issue
    from mailer.db import Database
    from mailer.desk import accounts, sessions
    from mailer.models import OptIn, SendStatus
    from mailer.people.importing import import_csv
    from mailer.people.lists import add_list
    from mailer.scheduling.plans import schedule_once
    from mailer.sending import campaign, ledger

    settings = Settings(root=root, database_url=db_url, secret_keys=(KEY,), hash_key=KEY, base_url=base_url,
                        backend="file", templates_path=(str(REPO / "templates"),))
    db = Database(db_url)
    db.upgrade()
    with db.session() as session:
        add_list(session, "news", "Riverside News", OptIn.DOUBLE, "Reports from our branches.")
        add_list(session, "bulletin", "Action Bulletin", OptIn.SINGLE)
    csv = root / "people.csv"
    with csv.open("w") as f:
        f.write("email,name\n")
        f.writelines(f"p{i}@example.net,Person {i}\n" for i in range(n))
    t0 = time.perf_counter()
    import_csv(db, settings, csv, "news", confirmed=True, rejects_path=root / "rejects.csv")
    with csv.open("w") as f:
        f.write("email,name\n")
        f.writelines(f"p{i}@example.net,Person {i}\n" for i in range(n // 5))
    import_csv(db, settings, csv, "bulletin", confirmed=False, rejects_path=root / "rejects.csv")
    for i in range(ISSUES):
        shutil.copytree(REPO / "issues" / "example", root / "issues" / f"2026-{i + 1:02d}-report")
    sent = compose_issue(settings, root / "issues" / "2026-01-report")
    send_id = campaign.start(db, sent, ["news"])
    ledger.freeze_audience(db, send_id)
    ledger.set_send_status(db, send_id, SendStatus.DONE, "bench: frozen, not sent")
    schedule_once(db, settings, root / "issues" / "2026-02-report", ("news",), "2031-07-01 09:00")
    from mailer.people import tagging

    for name, expression in SEGMENTS:
        tagging.add_segment(db, name, expression)
    weekly = root / "issues" / "weekly"             # a digest with an inbox of 5 reports
    shutil.copytree(REPO / "issues" / "example", weekly)
    (weekly / "inbox").mkdir()
    for report in sorted((weekly / "reports").iterdir()):
        report.rename(weekly / "inbox" / report.name)
    with db.engine.connect() as conn:   # the statistics a database in use has (autovacuum, or sqlite's analysis)
        conn.exec_driver_sql("ANALYZE")
        conn.commit()
    print(f"  {n:,} subscribers, {ISSUES} issues, one sent to all ({time.perf_counter() - t0:.0f} s to fill)")
    cookies = []
    for e in range(editors):
        secret = accounts.add_user(db, f"editor{e}@example.org", "editor")
        cookies.append(sessions.set_password_and_login(db, secret, PASSWORD, "127.0.0.1"))
    db.dispose()
    return cookies


def serve(root: Path, db_url: str, port: int, threads: int) -> subprocess.Popen:
    env = {**os.environ, "MAILER_ROOT": str(root), "MAILER_DATABASE_URL": db_url, "MAILER_SECRET_KEYS": KEY,
           "MAILER_HASH_KEY": KEY, "MAILER_BACKEND": "file", "MAILER_BASE_URL": f"http://127.0.0.1:{port}",
           "MAILER_TEMPLATES_PATH": str(REPO / "templates"), "MAILER_WEB_BACKGROUND_THREAD": "false"}
    log = (root / "server.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "mailer", "serve", "--production", "--port", str(port),
                             "--threads", str(threads)], env=env, stdout=subprocess.DEVNULL, stderr=log)
    for _ in range(400):
        if proc.poll() is not None:
            raise SystemExit(f"server exited: {(root / 'server.log').read_text()[-2000:]}")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/static/site.css", timeout=1).read()
            return proc
        except OSError:
            time.sleep(0.05)
    raise SystemExit("server did not come up")


def hammer(port: int, cookies: list[str], paths: list[str], seconds: float,
           pause: float) -> tuple[list[float], int, int]:
    """Each cookie's thread GETs *paths* in turn for *seconds*; (latencies, requests, non-2xx).

    pause 0: back to back (closed loop). pause P: each editor's requests are due every P seconds
    from a random start, and a latency counts from when its request was due, so a slow answer
    delays the editor's next requests and that delay is counted too (no coordinated omission).
    """
    latencies: list[float] = []
    bad = [0]
    lock = threading.Lock()
    start = time.perf_counter() + 0.05
    stop_at = start + seconds
    offsets = random.Random(13).sample(range(1000), len(cookies))

    def editor(index: int, cookie: str) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        headers = {"Cookie": f"mailer-desk={cookie}"} if cookie else {}
        mine, wrong, i = [], 0, index
        due = start + pause * offsets[index] / 1000
        while due < stop_at:
            time.sleep(max(0.0, due - time.perf_counter()))
            t0 = due if pause else time.perf_counter()
            conn.request("GET", paths[i % len(paths)], headers=headers)
            response = conn.getresponse()
            response.read()
            now = time.perf_counter()
            mine.append(now - t0)
            wrong += not 200 <= response.status < 300
            i += 1
            due = due + pause if pause else now
        conn.close()
        with lock:
            latencies.extend(mine)
            bad[0] += wrong

    threads = [threading.Thread(target=editor, args=(i, c)) for i, c in enumerate(cookies)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies, len(latencies), bad[0]


def status_of(port: int, cookie: str, path: str) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", path, headers={"Cookie": f"mailer-desk={cookie}"})
    status = conn.getresponse().status
    conn.close()
    return status


def measure(label: str, db_url: str, args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="desk-bench-") as tmp:
        root = Path(tmp)
        port = free_port()
        print(f"{label}:")
        cookies = populate(root, db_url, f"http://127.0.0.1:{port}", args.subscribers, args.editors)
        server = serve(root, db_url, port, args.threads)
        try:
            pages = [("reference: landing page /", ["/"], False), ("reference: static /static/site.css",
                     ["/static/site.css"], False), ("dashboard /desk/", ["/desk/"], True),
                     ("issue page /desk/issues/2026-01-report", ["/desk/issues/2026-01-report"], True),
                     ("search /desk/subscribers?q=", [f"/desk/subscribers?{q}" for q in SEARCHES], True),
                     ("lists /desk/lists", ["/desk/lists"], True), ("schedules /desk/schedules", ["/desk/schedules"], True),
                     ("segments /desk/segments", ["/desk/segments"], True),
                     ("segment page /desk/segments/mix", ["/desk/segments/mix"], True),
                     ("digests /desk/digests", ["/desk/digests"], True),
                     ("digest page /desk/digests/weekly", ["/desk/digests/weekly"], True)]
            for pause, seconds, what in ((args.pause, args.paced_seconds, f"each editor asks every {args.pause:g} s"),
                                         (0.0, args.seconds, "back to back (no pause: the server saturated)")):
                print(f" {args.editors} editors, {what}:", flush=True)
                for name, paths, desk in pages:
                    if args.only and not any(name.startswith(word) for word in args.only):
                        continue
                    if status_of(port, cookies[0], paths[0]) == 404:
                        print(f"  {name:44} not served yet (404)")
                        continue
                    who = cookies if desk else [""] * len(cookies)
                    hammer(port, who, paths, 1.0, pause)   # warm-up
                    latencies, count, bad = hammer(port, who, paths, seconds, pause)
                    p95 = percentile(latencies, 0.95)
                    target = None if not desk else TARGET_MS.get(name.split()[0], PAGE_TARGET_MS)
                    verdict = "" if target is None else (f"  target {target:.0f}: " + ("met" if p95 <= target else "MISSED"))
                    print(f"  {name:44} p50 {percentile(latencies, .5):6.1f}  p95 {p95:6.1f}  "
                          f"p99 {percentile(latencies, .99):6.1f} ms  {count / seconds:5.0f} req/s"
                          + (f"  {bad} non-2xx" if bad else "") + verdict, flush=True)
        finally:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(10)
            except subprocess.TimeoutExpired:
                server.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=100_000)
    parser.add_argument("--editors", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=10.0, help="per page, back to back")
    parser.add_argument("--pause", type=float, default=0.5, help="seconds between an editor's requests, paced")
    parser.add_argument("--paced-seconds", type=float, default=15.0, help="per page, paced")
    parser.add_argument("--threads", type=int, default=8, help="waitress threads (mailer serve's default: 8)")
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--only", action="append", metavar="PAGE",
                        help="only the pages whose name begins so (search, dashboard, reference, ...); repeatable")
    args = parser.parse_args()
    print(f"{args.subscribers:,} subscribers, {args.editors} editors (one session and connection each), "
          f"waitress {args.threads} threads, {os.cpu_count()} cores; {args.paced_seconds:g} s per page paced, "
          f"{args.seconds:g} s back to back")
    with tempfile.TemporaryDirectory() as tmp:
        measure("SQLite", f"sqlite:///{tmp}/desk.db", args)
    if not args.no_postgres:
        from tests.pgserver import PostgresServer

        pg = PostgresServer().start()
        try:
            measure("PostgreSQL", pg.new_database(), args)
        finally:
            pg.stop()


if __name__ == "__main__":
    main()
