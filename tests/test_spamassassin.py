"""SpamAssassin's local rules score the example issue's messages at most 0 (STANDARDS J5).

Debian's `spamassassin` (installed by .ci/run) in test mode: `-L` local tests only (no DNS
blocklists, no network), `-x` no user preferences, `-t` the report in the output. Its rules
come with the package (/usr/share/spamassassin); sa-update is not needed.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from mailer.config import Settings
from mailer.content.compose import compose_issue
from mailer.mail.message import MessageFactory, Recipient

SPAMASSASSIN = shutil.which("spamassassin")
pytestmark = pytest.mark.skipif(SPAMASSASSIN is None, reason="spamassassin is not installed "
                                "(apt-get install spamassassin; .ci/run does)")


def _score(data: bytes, home: Path) -> tuple[float, str]:
    result = subprocess.run([SPAMASSASSIN, "-L", "-x", "-t"], input=data, capture_output=True, timeout=120,
                            env={"HOME": str(home), "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"})
    assert result.returncode in (0, 1), result.stderr.decode(errors="replace")
    out = result.stdout.decode(errors="replace")
    status = re.search(r"^X-Spam-Status: \w+, score=(-?[\d.]+)", out, re.MULTILINE)
    assert status, out[-2000:]
    return float(status.group(1)), out[out.find("Content analysis details"):]


def test_example_issue_scores_at_most_zero_with_local_rules_J5(settings: Settings, tmp_path: Path) -> None:
    issue = compose_issue(settings, "issues/example")
    factory = MessageFactory(settings, subject=issue.subject, html=issue.html, text=issue.text,
                             issue_slug=issue.slug, preheader=issue.preheader)
    for recipient in (Recipient(key=1, email="ana.reader@example.net", name="Ana Reader", subscriber_uid="u1",
                                list_slug="news", list_name="Riverside News"),
                      Recipient(key=2, email="no.name@example.net", name="", subscriber_uid="u2",
                                list_slug="news", list_name="Riverside News")):
        score, report = _score(factory.render(recipient).data, tmp_path)
        assert score <= 0.0, report
        assert "HTML_FONT_LOW_CONTRAST" not in report


def test_the_rule_that_fired_before_fires_on_a_same_colour_preheader(settings: Settings, tmp_path: Path) -> None:
    """The check can fail: a preheader coloured like the background is what HTML_FONT_LOW_CONTRAST finds."""
    issue = compose_issue(settings, "issues/example")
    html = issue.html.replace('<div class="preheader" style="', '<div class="preheader" style="color:#f3f1ec; ', 1)
    assert html != issue.html
    factory = MessageFactory(settings, subject=issue.subject, html=html, text=issue.text,
                             issue_slug=issue.slug, preheader=issue.preheader)
    score, report = _score(factory.render(Recipient(key=1, email="ana@example.net", name="Ana",
                                                    subscriber_uid="u1", list_slug="news",
                                                    list_name="Riverside News")).data, tmp_path)
    assert "HTML_FONT_LOW_CONTRAST" in report and score > 0, report
