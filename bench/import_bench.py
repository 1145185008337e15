"""Import throughput and memory: generated CSVs of 100k and 1M rows into a fresh SQLite.

Each size runs in its own subprocess so that peak RSS (VmHWM) is that import's alone
(the import's reader child process is not counted; it holds one batch). The reference,
measured in the same run, is the straightforward way to write the same rows: read with
csv.reader in one process and inserted into the same four tables with plain
sqlite3.executemany (no validation, no deduplication, no suppression check), in batches
of 20,000, a subscriber, subscription and consent row per address and one audit event per
batch, in file order with random uids. mailer does more work per row and is faster: it
reads in a second process, sorts each batch, uses time-ordered uids and copies the
subscription and consent rows inside SQLite (see bench/import_bench_NOTES.md). Usage:

    .venv/bin/python -m bench.import_bench [ROWS ...]     # default: 100000 1000000
    .venv/bin/python -m bench.import_bench --mailchimp ROWS [--keep PATH]

--mailchimp times a Mailchimp-shaped audience export (the columns of a real one, times, IPs
and TAGS filled: mailer.people.importformats maps it) instead; --keep leaves the generated
file at PATH, so that another checkout can time the same file with --child-import.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DOMAINS = [f"example{i}.org" for i in range(200)] + ["gmail.com", "posteo.de", "riseup.net"]


def generate(path: Path, rows: int) -> None:
    """rows addresses (1 in 50 repeated in another case, 1 in 500 invalid), a name and two attributes."""
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, delimiter=";")
        w.writerow(["Email", "Name", "City", "Member since"])
        for i in range(rows):
            if i % 500 == 499:
                email = f"broken-{i}-at-example.org"
            elif i % 50 == 49:
                email = f"Person.{i - 1}@{DOMAINS[(i - 1) % len(DOMAINS)]}".upper()
            else:
                email = f"person.{i}@{DOMAINS[i % len(DOMAINS)]}"
            w.writerow([email, f"Person {i}", f"City {i % 97}", f"20{10 + i % 15}"])


MAILCHIMP_HEADER = ["Email Address", "First Name", "Last Name", "Branch", "MEMBER_RATING", "OPTIN_TIME", "OPTIN_IP",
                    "CONFIRM_TIME", "CONFIRM_IP", "LATITUDE", "LONGITUDE", "GMTOFF", "DSTOFF", "TIMEZONE", "CC",
                    "REGION", "LAST_CHANGED", "LEID", "EUID", "NOTES", "TAGS"]


def generate_mailchimp(path: Path, rows: int) -> None:
    """A subscribed-members export: the same addresses as generate(), Mailchimp's columns filled."""
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(MAILCHIMP_HEADER)
        for i in range(rows):
            if i % 500 == 499:
                email = f"broken-{i}-at-example.org"
            elif i % 50 == 49:
                email = f"Person.{i - 1}@{DOMAINS[(i - 1) % len(DOMAINS)]}".upper()
            else:
                email = f"person.{i}@{DOMAINS[i % len(DOMAINS)]}"
            day = f"20{10 + i % 15}-0{1 + i % 9}-1{i % 10} 1{i % 10}:2{i % 10}:3{i % 10}"
            ip = f"198.51.{i % 256}.{i // 256 % 256}"
            tags = '"Tenants Union","volunteer"' if i % 3 == 0 else ('"newsletter"' if i % 3 == 1 else "")
            w.writerow([email, "Person", str(i), f"Branch {i % 12}", str(1 + i % 5), day, ip, day, ip, "", "", "",
                        "", "", "", "", day, str(100000 + i), f"e{i:x}", "", tags])


def mailchimp_main(rows: int, keep: Path | None) -> None:
    print(f"Mailchimp-shaped export into SQLite, {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.2f} at start")
    with tempfile.TemporaryDirectory(prefix="mailer-import-csv-") as tmp:
        path = keep or Path(tmp) / f"mailchimp-{rows}.csv"
        generate_mailchimp(path, rows)
        ours = run_child("import", path)
        print(f"{rows:>10,} rows: {ours['rows'] / ours['seconds']:,.0f} rows/s, {ours['seconds']:.1f} s, "
              f"peak RSS {ours['rss_mib']:.1f} MiB, {ours['new']:,} new, {ours['rejected']:,} rejected, "
              f"{path.stat().st_size / 1e6:.0f} MB file")


def peak_rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def child_import(csv_path: str, workdir: str) -> None:
    from mailer.config import Settings
    from mailer.db import Database
    from mailer.people.importing import import_csv
    from mailer.people.lists import add_list

    settings = Settings(root=Path(workdir), database_url="sqlite:///subscribers/bench.db",
                        hash_key="bench-hash-key", secret_keys=("bench",))
    db = Database.from_settings(settings)
    db.upgrade()
    with db.session() as session:
        add_list(session, "news", "News")
    base = peak_rss_mib()
    start = time.perf_counter()
    report = import_csv(db, settings, Path(csv_path), "news", confirmed=True)
    seconds = time.perf_counter() - start
    print(json.dumps({"seconds": seconds, "rows": report.rows, "new": report.new_subscribers,
                      "rejected": report.rejected, "duplicates": report.duplicates_in_file,
                      "rss_mib": peak_rss_mib(), "rss_before_mib": base}))


def child_reference(csv_path: str, workdir: str) -> None:
    """The straightforward writer: same tables, same rows, sqlite3.executemany, no checks."""
    import base64
    import sqlite3

    from mailer.db import Database

    db_path = Path(workdir) / "reference.db"
    db = Database(f"sqlite:///{db_path}")
    db.upgrade()
    db.dispose()
    con = sqlite3.connect(db_path)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=NORMAL")
    con.execute("PRAGMA cache_size=-65536")
    con.execute("INSERT INTO mailing_list (slug, name, description, opt_in, created_at) "
                "VALUES ('news', 'News', '', 'double', '2026-01-01 00:00:00.000000')")
    con.commit()
    now = "2026-01-01 00:00:00.000000"
    start = time.perf_counter()
    rows = 0
    with open(csv_path, encoding="utf-8-sig", newline="") as f:
        reader = csv.reader(f, delimiter=";")
        next(reader)
        batch: list[list[str]] = []
        for row in reader:
            batch.append(row)
            if len(batch) == 20000:
                rows += _reference_batch(con, batch, now, base64)
                batch = []
        if batch:
            rows += _reference_batch(con, batch, now, base64)
    seconds = time.perf_counter() - start
    print(json.dumps({"seconds": seconds, "rows": rows, "rss_mib": peak_rss_mib()}))


def _reference_batch(con, batch, now, base64) -> int:  # type: ignore[no-untyped-def]
    subs = [(base64.urlsafe_b64encode(os.urandom(16)).rstrip(b"=").decode(), r[0], r[0].lower(), r[1],
             json.dumps({"city": r[2], "member since": r[3]}), now, now) for r in batch]
    con.executemany("INSERT INTO subscriber (uid, email, email_key, name, attributes, created_at, updated_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (email_key) DO NOTHING", subs)
    keys = [s[2] for s in subs]
    ids = [i for (i,) in con.execute(f"SELECT id FROM subscriber WHERE email_key IN ({','.join('?' * len(keys))})",
                                     keys)]
    con.executemany("INSERT INTO subscription (subscriber_id, list_id, status, reason, created_at, status_at, "
                    "confirmed_at) VALUES (?, 1, 'confirmed', 'import', ?, ?, ?) "
                    "ON CONFLICT (subscriber_id, list_id) DO NOTHING", [(i, now, now, now) for i in ids])
    con.executemany("INSERT INTO consent (subscriber_id, list_id, email, at, source, form_id, ip, user_agent, "
                    "text_version, text, confirmed_at, confirmed_ip) VALUES (?, 1, '', ?, 'import', 'f', '', '', "
                    "'', '', ?, '')", [(i, now, now) for i in ids])
    con.execute("INSERT INTO audit_event (at, subscriber_id, list_id, action, old_status, new_status, reason, "
                "actor, detail) VALUES (?, NULL, 1, 'import', '', 'confirmed', 'import', 'import', ?)",
                (now, f"f lines: {len(ids)} subscribed"))
    con.commit()
    return len(batch)


def run_child(kind: str, csv_path: Path) -> dict:  # type: ignore[type-arg]
    with tempfile.TemporaryDirectory(prefix="mailer-import-bench-") as workdir:
        out = subprocess.run([sys.executable, "-m", "bench.import_bench", f"--child-{kind}", str(csv_path), workdir],
                             check=True, capture_output=True, text=True, cwd=Path(__file__).resolve().parent.parent)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(sizes: list[int]) -> None:
    print(f"import into SQLite, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} at start")
    print(f"{'rows':>10} {'mailer rows/s':>14} {'reference rows/s':>17} {'ratio':>6} "
          f"{'peak RSS MiB':>13} {'ref RSS MiB':>12}  notes")
    with tempfile.TemporaryDirectory(prefix="mailer-import-csv-") as tmp:
        for size in sizes:
            path = Path(tmp) / f"members-{size}.csv"
            generate(path, size)
            ours = run_child("import", path)
            ref = run_child("reference", path)
            rate, ref_rate = ours["rows"] / ours["seconds"], ref["rows"] / ref["seconds"]
            print(f"{size:>10,} {rate:>14,.0f} {ref_rate:>17,.0f} {rate / ref_rate:>6.2f} "
                  f"{ours['rss_mib']:>13.1f} {ref['rss_mib']:>12.1f}  "
                  f"{ours['new']:,} new, {ours['duplicates']:,} duplicates, {ours['rejected']:,} rejected, "
                  f"{path.stat().st_size / 1e6:.0f} MB file, {ours['seconds']:.1f} s")
            path.unlink()


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--child-import":
        child_import(sys.argv[2], sys.argv[3])
    elif len(sys.argv) == 4 and sys.argv[1] == "--child-reference":
        child_reference(sys.argv[2], sys.argv[3])
    elif len(sys.argv) in (3, 5) and sys.argv[1] == "--mailchimp":
        mailchimp_main(int(sys.argv[2]), Path(sys.argv[4]) if len(sys.argv) == 5 and sys.argv[3] == "--keep" else None)
    else:
        main([int(a) for a in sys.argv[1:]] or [100_000, 1_000_000])
