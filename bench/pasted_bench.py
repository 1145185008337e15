"""Compose a 6-report issue in which two reports are 6,000-character pasted paragraphs.

Target (issue 12): <= 100 ms per compose. Reference measured in the same run: the same issue
with those two reports replaced by ordinary ones (what splitting, list detection and typography
add), and the sentence segmenter alone on one 6,000-character report.
Run: .venv/bin/python bench/pasted_bench.py
"""

from __future__ import annotations

import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from mailer.config import Settings  # noqa: E402
from mailer.content.compose import compose_issue  # noqa: E402
from mailer.content.pasted import split_paragraph, typography  # noqa: E402

PASTED = ("At the meeting on 12 Nov. Dr. Patel spoke first; J. R. Okafor followed with the figures, "
          "which showed 2.5% growth in the fund. “We won’t stop,” she said, and the room agreed. "
          "Sam Okafor from the tenants' union asked about the flats at no. 14, e.g. the damp. ")


def make_issue(root: Path, pasted: bool) -> str:
    shutil.copytree(REPO / "templates", root / "templates", dirs_exist_ok=True)
    slug = "pasted" if pasted else "plain"
    dst = root / "issues" / slug
    shutil.copytree(REPO / "issues" / "example", dst)
    reports = sorted((dst / "reports").iterdir())
    for i, report in enumerate(reports * 2, 1):
        target = dst / "reports" / f"{i:02d}-{report.name[3:]}"
        if not target.exists():
            shutil.copy(report, target)
    if pasted:
        body = (PASTED * 60)[:6000]
        (dst / "reports" / "05-pasted.txt").write_text("Pasted speech\n\n" + body + "\n")
        (dst / "reports" / "06-pasted.md").write_text("# Pasted minutes\n\n" + body + "\n")
        for old in ("05-bakery-appeal.txt", "06-whats-on.md"):
            (dst / "reports" / old).unlink(missing_ok=True)
    toml = (dst / "issue.toml").read_text().split("reports =")[0]
    (dst / "issue.toml").write_text(toml)
    return f"issues/{slug}"


def timed(settings: Settings, issue: str, runs: int = 20) -> list[float]:
    compose_issue(settings, issue)   # warm-up: imports, template caches
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        compose_issue(settings, issue)
        out.append((time.perf_counter() - t0) * 1000)
    return out


def main() -> None:
    root = Path(tempfile.mkdtemp())
    settings = Settings(root=root)
    plain, pasted = make_issue(root, False), make_issue(root, True)
    ref, new = timed(settings, plain), timed(settings, pasted)
    issue = compose_issue(settings, pasted)
    body = typography((PASTED * 60)[:6000])
    t0 = time.perf_counter()
    for _ in range(50):
        pieces = split_paragraph(body)
    split_ms = (time.perf_counter() - t0) / 50 * 1000
    print(f"issue: {issue.report_count} reports, two of them 6,000-character pasted paragraphs")
    print(f"compose with pasted reports: p50 {statistics.median(new):.1f} ms, max {max(new):.1f} ms "
          f"(target <= 100 ms)")
    print(f"reference, same run, ordinary reports: p50 {statistics.median(ref):.1f} ms "
          f"({statistics.median(new) / statistics.median(ref):.2f}x)")
    print(f"splitting one 6,000-character paragraph into {len(pieces)}: {split_ms:.2f} ms")
    shutil.rmtree(root)


if __name__ == "__main__":
    main()
