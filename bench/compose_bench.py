"""Compose + inline a 6-report issue (once per issue) and personalise it (once per recipient).

Targets (issue 2): compose + inline <= 300 ms; personalisation <= 50 µs per recipient.
Issue 12: the cost of the accessibility lint (part of compose) is printed on its own.
STANDARDS H3: inlining a newsletter stays within budget, once per issue, never per recipient.
Reference measured in the same run: rendering the same issue with Jinja + premailer per recipient,
which is what personalisation by substitution avoids.
Run: .venv/bin/python bench/compose_bench.py
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

from mailer.content.compose import compose_issue  # noqa: E402
from mailer.content.lint import a11y_warnings  # noqa: E402
from mailer.config import Settings  # noqa: E402
from mailer.content.personalize import escape_html, keep  # noqa: E402
from mailer.mail.mime import QPTemplate  # noqa: E402


def make_issue(root: Path) -> None:
    shutil.copytree(REPO / "templates", root / "templates")
    src = REPO / "issues" / "example"
    dst = root / "issues" / "bench"
    shutil.copytree(src, dst)
    reports = sorted((dst / "reports").iterdir())
    for i, report in enumerate(reports * 2, 1):
        target = dst / "reports" / f"{i:02d}-{report.name[3:]}"
        if not target.exists():
            shutil.copy(report, target)
    toml = (dst / "issue.toml").read_text().split("reports =")[0]
    (dst / "issue.toml").write_text(toml)


def main() -> None:
    root = Path(tempfile.mkdtemp())
    make_issue(root)
    settings = Settings(root=root)
    compose_issue(settings, "issues/bench")  # warm-up: imports, template compilation caches
    times = []
    for _ in range(20):
        t0 = time.perf_counter()
        issue = compose_issue(settings, "issues/bench")
        times.append((time.perf_counter() - t0) * 1000)
    lint_times = []
    for _ in range(20):
        t0 = time.perf_counter()
        a11y_warnings(issue.reports, issue.html)
        lint_times.append((time.perf_counter() - t0) * 1000)
    html, text = QPTemplate(issue.html, escape_html), QPTemplate(issue.text, keep)   # as MessageFactory does
    n = 20_000
    values = [{"name": f"Person {i}", "email": f"p{i}@example.org",
               "unsubscribe_url": f"https://news.example.org/u/WyJ{i:08d}IiwibmV3cyJd.sig",
               "preferences_url": f"https://news.example.org/p/WyJ{i:08d}IiwibmV3cyJd.sig",
               "view_online_url": "https://news.example.org/archive/bench"} for i in range(n)]
    t0 = time.perf_counter()
    for v in values:
        html.fill(v)
        text.fill(v)
    per_recipient_us = (time.perf_counter() - t0) / n * 1e6
    print(f"issue: {issue.report_count} reports, HTML {len(issue.html.encode()):,} B, text {len(issue.text.encode()):,} B")
    print(f"compose + inline, once per issue: p50 {statistics.median(times):.1f} ms, "
          f"max {max(times):.1f} ms over {len(times)} runs (target <= 300 ms)")
    lint = statistics.median(lint_times)
    print(f"of which the accessibility lint (content.a11y, on the inlined HTML): p50 {lint:.1f} ms "
          f"({lint / statistics.median(times):.0%} of compose)")
    print(f"personalisation by substitution (quoted-printable bodies): {per_recipient_us:.1f} µs per recipient (target <= 50 µs)")
    ratio = statistics.median(times) * 1000 / per_recipient_us
    print(f"reference, same run: re-composing per recipient would cost {ratio:,.0f}x more per recipient")
    shutil.rmtree(root)


if __name__ == "__main__":
    main()
