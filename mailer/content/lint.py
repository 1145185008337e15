"""Checks on a composed issue before anyone sends it: size, links, images, unsubscribe."""

from __future__ import annotations

import binascii

import lxml.html

from mailer.content.images import is_local
from mailer.content.a11y import Section, check_html
from mailer.content.personalize import placeholder
from mailer.content.reports import Report

GMAIL_CLIP = 102_000      # Gmail clips HTML parts larger than this (STANDARDS A13)
WARN_SIZE = 90_000
# a filled placeholder is longer than the marker: a URL with a signed token
PLACEHOLDER_GROWTH = 160
# what the sanitiser removed, said the way an editor thinks of it
REMOVED = {"link": ("a link to", "only http(s) and mailto links are kept"),
           "image": ("an image from", "images must be https:// URLs")}


def html_part_size(html: str) -> int:
    """Bytes of the HTML part as encoded in the message (quoted-printable), once personalised."""
    encoded = binascii.b2a_qp(html.encode("utf-8"))
    return len(encoded) + html.count("__mailer_") * PLACEHOLDER_GROWTH


def _links_and_images(fragment_html: str) -> tuple[list[str], list[tuple[str, str | None]]]:
    if not fragment_html.strip():
        return [], []
    root = lxml.html.fromstring(f"<div>{fragment_html}</div>")
    # an <a> or <img> without the attribute is one the sanitiser emptied: Report.removed names it
    links = [a.get("href") for a in root.iter("a") if a.get("href") is not None]
    images = [(img.get("src"), img.get("alt")) for img in root.iter("img") if img.get("src") is not None]
    return links, images


def lint_issue(reports: list[Report], html: str, text: str, template: str = "issue.html",
               own_media: str = "") -> tuple[list[str], list[str]]:
    """Return (errors, warnings); each line names the report file or the part it is about.

    Images under *own_media* are the issue's own (content.images checked them)."""
    errors: list[str] = []
    warnings: list[str] = []
    for report in reports:
        name = report.path.name
        if report.words == 0:
            errors.append(f"{name}: the report is empty")
        for kind, url in report.removed:
            what, rule = REMOVED[kind]
            errors.append(f"{name}: {what} {url[:80]!r} was removed ({rule}); fix or delete it")
        links, images = _links_and_images(report.html)
        for href in links:
            if href.startswith("#") or href.startswith(("https://", "mailto:")):
                continue
            if href.startswith("http://"):
                warnings.append(f"{name}: link {href[:80]!r} is not https")
            else:
                errors.append(f"{name}: link {href[:80]!r} is not an absolute http(s) link; "
                              "it will not work in a mail")
        for src, alt in images:
            if not alt or not alt.strip():
                warnings.append(f"{name}: image {src[:80]!r} has no alt text (screen readers, "
                                "and mail clients that block images, show nothing)")
            if not src.startswith("https://") and not (own_media and src.startswith(own_media)) \
                    and not is_local(src):
                errors.append(f"{name}: image {src[:80]!r} must be an https:// URL or a file in the issue "
                              "folder (images/...)")
        if report.image and not report.image.startswith(("https://", own_media or "https://")):
            errors.append(f"{name}: front matter image {report.image[:80]!r} must be an https:// URL")
    size = html_part_size(html)
    if size > GMAIL_CLIP:
        errors.append(f"HTML part: {size:,} bytes once encoded; Gmail clips mails over 102 KB: "
                      "shorten the reports or split the issue")
    elif size > WARN_SIZE:
        warnings.append(f"HTML part: {size:,} bytes once encoded; close to Gmail's 102 KB clipping limit")
    unsubscribe = placeholder("unsubscribe_url")
    if unsubscribe not in html:
        errors.append("HTML part: no unsubscribe link (the template must use personal('unsubscribe_url'))")
    if unsubscribe not in text:
        errors.append("text part: no unsubscribe link (the template must use personal('unsubscribe_url'))")
    warnings += a11y_warnings(reports, html, template)
    return errors, warnings


def a11y_warnings(reports: list[Report] | tuple[Report, ...], html: str, template: str = "issue.html") -> list[str]:
    """The accessibility lint of *html*, each warning naming its report, the intro or *template*."""
    sections = {r.anchor: Section(r.path.name, report=True, plain_text=r.path.suffix.lower() == ".txt")
                for r in reports}
    sections["intro"] = Section("issue.toml (intro)")
    return check_html(html, sections, Section(template))
