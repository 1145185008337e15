"""End-to-end send throughput (DB -> ledger -> SMTP) against Postfix's smtp-sink, and peak RSS.

For each message size (the example issue padded to ~40 KB and ~95 KB) and
each concurrency, in the same run:

- the limit: ``smtp-source -s C -m N -d -F same.eml`` (Postfix's C load
  generator, same message, same concurrency, reused connections);
- mailer: a fresh SQLite database with N confirmed subscribers, a new send,
  `run_send` through the SMTP backend with C connections: audience frozen,
  every row claimed, rendered, sent and committed, in a child process that
  also reports its peak RSS.

The two are run alternately --repeat times and each side's best run is compared:
on this shared machine either side's speed drifts by a third between runs.
Then one run with 100,000 subscribers shows whether peak RSS stays flat.
smtp-sink listens on a loopback high port and is killed by pid at the end.

    .venv/bin/python bench/send_bench.py [--subscribers 20000] [--concurrency 1,2] [--big 100000] [--repeat 2]
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

FILLER = ("<p style=\"margin:0 0 12px;font-family:Georgia,serif;font-size:16px;line-height:1.5\">"
          "The tenants' union met on Tuesday: forty people, two new stewards, and a plan for the "
          "winter. Thank you to everyone who cooked, counted and carried.</p>\n")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def padded_issue(target: int):  # type: ignore[no-untyped-def]
    """The example issue, composed, its HTML padded so that one rendered message is ~*target* bytes."""
    from dataclasses import replace

    from mailer.content.compose import compose_issue
    from mailer.config import Settings

    settings = Settings(root=REPO, secret_keys=("bench",), hash_key="bench")
    composed = compose_issue(settings, REPO / "issues" / "example")
    html = composed.html
    size = len(composed.html.encode()) * 1.05 + len(composed.text.encode()) * 1.05 + 1500
    extra = []
    while size < target:
        extra.append(FILLER)
        size += len(FILLER) * 1.03
    html = html.replace("</body>", "".join(extra) + "</body>", 1) if "</body>" in html else html + "".join(extra)
    return replace(composed, html=html)


def child(args: argparse.Namespace) -> None:
    """One measured send in this (fresh) process; prints a JSON line."""
    from bench.audience import add_subscribers
    from mailer.sending import ledger
    from mailer.backends.smtp import SMTPBackend
    from mailer.config import Settings
    from mailer.db import Database
    from mailer.models import SendStatus
    from mailer.sending.loop import run_send

    tmp = Path(tempfile.mkdtemp(prefix="send-bench-"))
    try:
        url = f"sqlite:///{tmp}/bench.db"
        db = Database(url)
        db.upgrade()
        add_subscribers(db, "news", args.subscribers)
        composed = padded_issue(args.size)
        settings = Settings(root=tmp, database_url=url, secret_keys=("bench-key",), hash_key="bench-hash",
                            base_url="https://news.example.org", smtp_host="127.0.0.1", smtp_port=args.port,
                            smtp_security="none", smtp_connections=args.connections, smtp_timeout=30.0)
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        started = time.perf_counter()
        with db.session() as session:
            send_id = ledger.create_send(session, composed, ["news"]).id
        ledger.claim_send(db, send_id, SendStatus.DRAFT)
        with SMTPBackend(settings) as backend:
            summary = run_send(db, settings, send_id, backend=backend)
        elapsed = time.perf_counter() - started
        print(json.dumps({"sent": summary.sent, "elapsed": elapsed, "status": summary.status.value,
                          "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                          "rss_before_mb": rss_before / 1024}))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def sample_message(size: int, path: Path) -> int:
    """Write one rendered message (LF line ends: smtp-source adds the CR) and return its size in bytes."""
    from mailer.config import Settings
    from mailer.mail.message import MessageFactory, Recipient

    composed = padded_issue(size)
    settings = Settings(root=REPO, secret_keys=("bench-key",), hash_key="bench-hash",
                        base_url="https://news.example.org")
    factory = MessageFactory(settings, subject=composed.subject, html=composed.html, text=composed.text,
                             issue_slug=composed.slug)
    data = factory.render(Recipient(1, "user1@example.net", "Reader user1", "uid1", "news", "News")).data
    path.write_bytes(data.replace(b"\r\n", b"\n"))
    return len(data)


def run_child(port: int, size: int, subscribers: int, connections: int) -> dict:
    cmd = [sys.executable, __file__, "--child", "--port", str(port), "--size", str(size),
           "--subscribers", str(subscribers), "--connections", str(connections)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def smtp_source(port: int, eml: Path, count: int, sessions: int) -> float:
    started = time.perf_counter()
    subprocess.run(["smtp-source", "-s", str(sessions), "-m", str(count), "-d", "-F", str(eml),
                    "-f", "bounces@example.org", "-t", "user@example.net", f"127.0.0.1:{port}"],
                   check=True, capture_output=True)
    return count / (time.perf_counter() - started)


def spread(values: list[float]) -> str:
    return " / ".join(f"{v:,.0f}" for v in values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--subscribers", type=int, default=20000)
    parser.add_argument("--concurrency", default="1,2")
    parser.add_argument("--sizes", default="40000,95000")
    parser.add_argument("--big", type=int, default=100000, help="subscribers of the RSS run (0: skip)")
    parser.add_argument("--repeat", type=int, default=2, help="runs of each side per configuration (best counts)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, default=40000, help=argparse.SUPPRESS)
    parser.add_argument("--connections", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    if not shutil.which("smtp-sink") or not shutil.which("smtp-source"):
        sys.exit("smtp-sink / smtp-source not found: apt-get install postfix (see /work/shared/BENCHMARKING.md)")
    port = free_port()
    sink = subprocess.Popen(["smtp-sink", "-u", "nobody", f"127.0.0.1:{port}", "1024"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    rows = []
    work = Path(tempfile.mkdtemp(prefix="send-bench-eml-"))
    try:
        time.sleep(0.3)
        for size in (int(s) for s in args.sizes.split(",")):
            eml = work / f"same-{size}.eml"
            real_size = sample_message(size, eml)
            for conc in (int(c) for c in args.concurrency.split(",")):
                # alternate the two, --repeat times: the machine's speed drifts by +-30 % between runs,
                # so each side's best run is compared (the spread is printed too)
                limits, rates, rss = [], [], 0.0
                for _ in range(args.repeat):
                    limits.append(smtp_source(port, eml, args.subscribers, conc))
                    ours = run_child(port, size, args.subscribers, conc)
                    rates.append(ours["sent"] / ours["elapsed"])
                    rss = max(rss, ours["rss_mb"])
                rate, limit = max(rates), max(limits)
                rows.append((f"{real_size / 1024:.0f} KB", conc, args.subscribers, ours["sent"], rate, limit,
                             rate / limit, rss))
                print(f"  {real_size / 1024:.0f} KB x{conc}: mailer {spread(rates)} msg/s, "
                      f"smtp-source {spread(limits)} msg/s, ratio of the bests {rate / limit:.2f}, "
                      f"peak RSS {rss:.0f} MB", flush=True)
        if args.big:
            size = int(args.sizes.split(",")[-1])
            conc = int(args.concurrency.split(",")[-1])
            big = run_child(port, size, args.big, conc)
            rate = big["sent"] / big["elapsed"]
            rows.append((f"{real_size / 1024:.0f} KB", conc, args.big, big["sent"], rate, float("nan"), float("nan"),
                         big["rss_mb"]))
    finally:
        sink.send_signal(signal.SIGTERM)
        sink.wait(timeout=10)
        shutil.rmtree(work, ignore_errors=True)
    print()
    print(f"{'message':>8} {'conns':>5} {'subscribers':>11} {'sent':>7} {'mailer msg/s':>12} "
          f"{'smtp-source msg/s':>17} {'ratio':>6} {'peak RSS MB':>11}")
    for size, conc, n, sent, rate, limit, ratio, rss in rows:
        lim = f"{limit:,.0f}" if limit == limit else "-"
        rat = f"{ratio:.2f}" if ratio == ratio else "-"
        print(f"{size:>8} {conc:>5} {n:>11,} {sent:>7,} {rate:>12,.0f} {lim:>17} {rat:>6} {rss:>11.0f}")
    print("\ntargets: ratio >= 0.5 of smtp-source at the same size and concurrency; peak RSS <= 150 MB, flat")


if __name__ == "__main__":
    main()
