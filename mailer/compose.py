"""reports + issue.toml -> a composed issue: subject, inlined HTML and text with placeholders."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class ComposedIssue:
    """One edition, rendered and inlined once; personalised later by mailer.personalize."""

    slug: str                       # the issue folder's name
    path: Path                      # the issue folder
    subject: str                    # clean one-line subject (header-safe)
    preheader: str
    lists: tuple[str, ...]          # list slugs named in issue.toml (may be empty)
    html: str                       # inlined HTML holding __mailer_<key>__ placeholders
    text: str                       # plain text (wrapped at 72) holding the same placeholders
    archive_html: str               # the web version: no personal data, no placeholders
    content_hash: str               # sha256 over issue.toml, reports and templates used
    warnings: tuple[str, ...] = field(default_factory=tuple)
    report_count: int = 0


def compose_issue(settings, issue_dir):  # type: ignore[no-untyped-def]
    """Being written (issue 2)."""
    raise NotImplementedError
