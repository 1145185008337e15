"""Start-up time of the `mailer` command, each figure next to `python -c pass` measured in the same run.

Targets (issue 10): `mailer --help` <= 5x `python -c pass`; `mailer lists`, `mailer status`,
`mailer schedule list` <= 12x; `mailer compose` of the example issue <= 15x.
Each command runs in a fresh project made in a temp folder (init, a list, the example issue,
a few subscribers), RUNS times; the median and the best are printed. Figures only, no asserts.
Run: .venv/bin/python bench/cli_bench.py [RUNS]
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RUNS = int(sys.argv[1]) if len(sys.argv) > 1 else 7

# (label, arguments after `python`, target ratio to `python -c pass`)
CASES: list[tuple[str, list[str], float | None]] = [
    ("python -c pass", ["-c", "pass"], None),
    ("import sqlalchemy.orm (floor)", ["-c", "import sqlalchemy.orm"], None),
    ("mailer --help", ["-m", "mailer", "--help"], 5),
    ("mailer lists", ["-m", "mailer", "lists"], 12),
    ("mailer status issues/example", ["-m", "mailer", "status", "issues/example"], 12),
    ("mailer schedule list", ["-m", "mailer", "schedule", "list"], 12),
    ("mailer compose issues/example", ["-m", "mailer", "compose", "issues/example"], 15),
]


def _env(root: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILER_")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    env.update(MAILER_ROOT=str(root), MAILER_SECRET_KEYS="bench-secret-key", MAILER_HASH_KEY="bench-hash-key",
               MAILER_BASE_URL="https://news.example.org")
    return env


def _mailer(root: Path, *args: str) -> None:
    subprocess.run([sys.executable, "-m", "mailer", *args], cwd=root, env=_env(root), check=True,
                   stdout=subprocess.DEVNULL)


def make_project(root: Path) -> None:
    """A project as an editor has it: settings, a database, one list, the example issue, subscribers."""
    shutil.copytree(REPO / "templates", root / "templates")
    shutil.copytree(REPO / "issues" / "example", root / "issues" / "example")
    (root / "subscribers").mkdir()
    _mailer(root, "init")
    _mailer(root, "lists", "add", "news", "News")
    for i in range(5):
        _mailer(root, "subscribers", "add", f"reader{i}@example.org", "--list", "news", "--confirmed")


def measure(root: Path, args: list[str]) -> list[float]:
    """Wall-clock milliseconds of RUNS runs of `python ARGS` in the project (after one warm-up)."""
    env = _env(root)
    times = []
    for i in range(RUNS + 1):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, *args], cwd=root, env=env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if i:
            times.append((time.perf_counter() - t0) * 1000)
    return times


def main() -> None:
    root = Path(tempfile.mkdtemp(prefix="mailer-cli-bench-"))
    try:
        make_project(root)
        print(f"{RUNS} runs each (after a warm-up), in {root}")
        print(f"{'command':32} {'median':>9} {'best':>9} {'x pass':>7} {'target':>7}")
        reference = None
        for label, args, target in CASES:
            times = measure(root, args)
            median, best = statistics.median(times), min(times)
            reference = reference or median
            ratio = median / reference
            shown = f"<= {target:g}x" if target else ""
            print(f"{label:32} {median:7.0f}ms {best:7.0f}ms {ratio:6.1f}x {shown:>7}")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
