"""The one HTML sanitiser: what a report (or anything pasted) may keep, asked of nh3.

Formatting, links and images stay; scripts, iframes, event handlers and any URL scheme but
http(s) and mailto go. `removed_urls` names what `sanitize` drops, so the lint can say so.
"""

from __future__ import annotations

import html

import lxml.html
import nh3

ALLOWED_TAGS = {
    "p", "br", "a", "strong", "b", "em", "i", "u", "s", "blockquote", "ul", "ol", "li", "h2", "h3",
    "h4", "code", "pre", "hr", "img", "table", "thead", "tbody", "tr", "th", "td", "sup", "sub",
}
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "img": {"src", "alt", "width", "height"}, "ol": {"start"},
                      "th": {"align"}, "td": {"align"}}
URL_SCHEMES = {"http", "https", "mailto"}


def sanitize(html: str) -> str:
    """Keep formatting, drop scripts, iframes, event handlers and non-http(s) links."""
    return nh3.clean(html, tags=ALLOWED_TAGS, attributes=ALLOWED_ATTRIBUTES, url_schemes=URL_SCHEMES,
                     link_rel="noopener noreferrer")


def removed_urls(fragment: str) -> list[tuple[str, str]]:
    """The link targets and image sources in *fragment* that sanitize() drops, as (kind, url)."""
    if "href" not in fragment and "src" not in fragment:
        return []
    root = lxml.html.fromstring(f"<div>{fragment}</div>")
    found = [("link", a.get("href")) for a in root.iter("a") if a.get("href") is not None]
    found += [("image", img.get("src")) for img in root.iter("img") if img.get("src") is not None]
    return [(kind, url) for kind, url in found if not _url_kept(url)]


def _url_kept(url: str) -> bool:
    """Whether sanitize() keeps this URL: asked of nh3 itself, so the two cannot disagree."""
    probe = nh3.clean(f'<a href="{html.escape(url, quote=True)}"></a>', tags={"a"},
                      attributes={"a": {"href"}}, url_schemes=URL_SCHEMES, link_rel=None)
    return "href=" in probe
