"""The SMTP backend's throughput against Postfix's smtp-source, both into smtp-sink, in one run.

    .venv/bin/python -m bench.smtp_backend_bench [--count 5000] [--kb 40 95] [--connections 1 4]

Messages are rendered by MessageFactory inside the timed loop (render + send,
no database: bench/send measures end to end). The reference is `smtp-source`
sending a message of the same size with the same number of sessions, reusing
connections (-d), to the same `smtp-sink` on loopback: the physical limit here.
The sink is started on a free port and stopped (by its pid) at the end.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from bench.message_bench import REPO, padded, recipients
from mailer.backends.smtp import SMTPBackend
from mailer.content.compose import compose_issue
from mailer.config import Settings
from mailer.mail.message import MessageFactory


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(port: int, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"smtp-sink did not listen on port {port}")


def backend_rate(settings: Settings, factory: MessageFactory, count: int, batch: int) -> float:
    people = recipients(count)
    with SMTPBackend(settings) as backend:
        start = time.perf_counter()
        sent = 0
        for i in range(0, count, batch):
            results = backend.send([factory.render(r) for r in people[i:i + batch]]).results
            sent += sum(r.outcome.value == "sent" for r in results)
        elapsed = time.perf_counter() - start
    if sent != count:
        raise SystemExit(f"only {sent} of {count} messages were accepted")
    return count / elapsed


def source_rate(port: int, eml: Path, count: int, sessions: int) -> float:
    start = time.perf_counter()
    subprocess.run(["smtp-source", "-s", str(sessions), "-m", str(count), "-d", "-F", str(eml),
                    "-f", "bounces@example.org", "-t", "reader@example.net", f"127.0.0.1:{port}"],
                   check=True, capture_output=True)
    return count / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=5000)
    parser.add_argument("--kb", type=int, nargs="+", default=[40, 95])
    parser.add_argument("--connections", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--batch", type=int, default=100)
    args = parser.parse_args()
    if not shutil.which("smtp-sink") or not shutil.which("smtp-source"):
        raise SystemExit("smtp-sink / smtp-source not found: apt-get install postfix (see BENCHMARKING.md)")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        shutil.copytree(REPO / "templates", root / "templates")
        shutil.copytree(REPO / "issues" / "example", root / "issues" / "example")
        base = Settings(root=root, secret_keys=("bench-key",), base_url="https://news.example.org")
        issue = compose_issue(base, root / "issues" / "example")
        port = free_port()
        sink = subprocess.Popen(["smtp-sink", "-u", "nobody", f"127.0.0.1:{port}", "1024"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_listening(port)
            print(f"{args.count} messages per run, smtp-sink on 127.0.0.1:{port}, {os.cpu_count()} cores")
            for kb in args.kb:
                html, text = padded(issue.html, issue.text, kb)
                for connections in args.connections:
                    settings = base.replace(smtp_host="127.0.0.1", smtp_port=port, smtp_security="none",
                                            smtp_connections=connections, smtp_timeout=30.0)
                    factory = MessageFactory(settings, subject=issue.subject, html=html, text=text,
                                             issue_slug=issue.slug, preheader=issue.preheader)
                    sample = factory.render(recipients(1)[0]).data
                    eml = root / f"sample-{kb}.eml"
                    eml.write_bytes(sample.replace(b"\r\n", b"\n"))
                    ours = backend_rate(settings, factory, args.count, args.batch)
                    limit = source_rate(port, eml, args.count, connections)
                    print(f"message {len(sample) / 1024:5.1f} KB, {connections} connection(s): "
                          f"render+SMTP backend {ours:6.0f} msgs/s | smtp-source {limit:6.0f} msgs/s | "
                          f"ratio {ours / limit:4.2f}")
        finally:
            sink.send_signal(signal.SIGTERM)
            try:
                sink.wait(timeout=5)
            except subprocess.TimeoutExpired:
                sink.kill()
                sink.wait()


if __name__ == "__main__":
    main()
