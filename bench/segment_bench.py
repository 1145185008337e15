"""Freezing a segment: 10% of N subscribers (tagged), against freezing the whole list in the same run.

    .venv/bin/python bench/segment_bench.py [N] [--postgres]      (N default 1,000,000)

N confirmed subscribers of list `news` are imported (mailer's own import), every tenth is tagged
`tenth` and has attribute branch=east, and the ledger freezes: (a) the whole list (reference),
(b) `--tag tenth`, (c) the segment `attr.branch = east and tag = tenth`. Prints rows frozen and
seconds for each, on SQLite (and PostgreSQL with --postgres, started in a temp folder).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from sqlalchemy import text  # noqa: E402

from mailer.config import Settings  # noqa: E402
from mailer.content.compose import compose_issue  # noqa: E402
from mailer.db import Database  # noqa: E402
from mailer.people.importing import import_csv  # noqa: E402
from mailer.people.lists import add_list  # noqa: E402
from mailer.models import OptIn, SendStatus  # noqa: E402
from mailer.people.tagging import Audience  # noqa: E402
from mailer.sending import campaign, ledger  # noqa: E402


def populate(db: Database, settings: Settings, n: int, folder: Path) -> float:
    csv = folder / "people.csv"
    with csv.open("w") as f:
        f.write("email,name,branch\n")
        for i in range(n):
            f.write(f"p{i}@example.net,Person {i},{'east' if i % 10 == 0 else 'west'}\n")
    with db.session() as session:
        add_list(session, "news", "News", OptIn.SINGLE)
    t0 = time.perf_counter()
    import_csv(db, settings, csv, "news", confirmed=True, rejects_path=folder / "rejects.csv")
    with db.engine.begin() as conn:
        conn.execute(text("INSERT INTO subscriber_tag (subscriber_id, tag, created_at) "
                          "SELECT id, 'tenth', created_at FROM subscriber WHERE id % 10 = 1"))
    return time.perf_counter() - t0


def freeze(db: Database, settings: Settings, audience: Audience | None, again: bool) -> tuple[int, float]:
    composed = compose_issue(settings, REPO / "issues" / "example")
    send_id = campaign.start(db, composed, ["news"], again=again, audience=audience.as_json() if audience else None)
    t0 = time.perf_counter()
    rows = ledger.freeze_audience(db, send_id)
    seconds = time.perf_counter() - t0
    ledger.set_send_status(db, send_id, SendStatus.DONE, "bench: frozen, not sent")
    return rows, seconds


def run(label: str, url: str, n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        settings = Settings(root=REPO, database_url=url, secret_keys=("bench",), hash_key="bench",
                            base_url="https://news.example.org", backend="file")
        db = Database(url)
        db.upgrade()
        took = populate(db, settings, n, folder)
        print(f"{label}: {n:,} subscribers imported and tagged in {took:.1f} s")
        cases = [("whole list (reference)", None), ("--tag tenth", Audience(tags=("tenth",))),
                 ("segment attr.branch = east and tag = tenth", Audience(segment="attr.branch = east and tag = tenth"))]
        base = None
        for i, (name, audience) in enumerate(cases):
            rows, seconds = freeze(db, settings, audience, again=i > 0)
            base = base or seconds
            print(f"  freeze {name}: {rows:,} rows in {seconds:.2f} s ({seconds / base:.2f}x the whole list)")
        db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("n", nargs="?", type=int, default=1_000_000)
    parser.add_argument("--postgres", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run("SQLite", f"sqlite:///{tmp}/bench.db", args.n)
    if args.postgres:
        from tests.pgserver import PostgresServer

        pg = PostgresServer().start()
        try:
            run("PostgreSQL", pg.url(), args.n)
        finally:
            pg.stop()


if __name__ == "__main__":
    main()
