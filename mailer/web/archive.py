"""The public site: the landing page, the archive of sent issues (web versions, no personal
data) with previous/next links and a sign-up link on each, and the Atom feed.

An archived issue is the mail's own HTML; the site's bar (templates/web/archive_bar.html,
inline styles only, as ARCHIVE_CSP allows) is put after its <body> tag and the feed's
<link rel="alternate"> before </head>.
"""

from __future__ import annotations

import re

from flask import Blueprint, Response, abort, render_template

from mailer.content.archive import IssueLink, archive_page, issue_links, published
from mailer.people.directory import public_lists
from mailer.mail.links import ARCHIVE_PATH, archive_url
from mailer.web.guard import ARCHIVE_CSP
from mailer.web.pages import page, web

bp = Blueprint("archive", __name__)
FEED_SIZE = 20
LATEST = 5
FEED_PATH = "/archive/feed.xml"
_BODY = re.compile(r"<body\b[^>]*>", re.I)
_HEAD_END = re.compile(r"</head\s*>", re.I)


@bp.get("/")
def home():  # type: ignore[no-untyped-def]
    """The group's name, a sign-up form for each list, the latest issues."""
    ctx = web()
    issues = [(a.subject, archive_url(ctx.settings, a.slug), a.at) for a in issue_links(ctx.db, LATEST + 1)]
    html, status = page("home.html", lists=public_lists(ctx.db), issues=issues[:LATEST],
                        more=len(issues) > LATEST, consent_text=ctx.settings.consent_text,
                        consent_version=ctx.settings.consent_version, feed_url=FEED_PATH)
    response = Response(html, status)
    response.headers["Cache-Control"] = "no-store"   # the forms carry a form token
    return response


@bp.get("/archive/")
@bp.get("/archive")
def index():  # type: ignore[no-untyped-def]
    ctx = web()
    issues = [(a.subject, archive_url(ctx.settings, a.slug), a.at) for a in issue_links(ctx.db)]
    html, status = page("archive.html", issues=issues, feed_url=FEED_PATH)
    response = Response(html, status)
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


@bp.get(ARCHIVE_PATH)
def issue(slug: str):  # type: ignore[no-untyped-def]
    ctx = web()
    found = archive_page(ctx.db, slug)
    if found is None:
        abort(404)
    settings = ctx.settings

    def link(a: IssueLink | None) -> tuple[str, str] | None:
        return (a.subject, archive_url(settings, a.slug)) if a else None

    lists = public_lists(ctx.db)
    bar = render_template("web/archive_bar.html", group_name=settings.group_name, older=link(found.older),
                          newer=link(found.newer), signup=f"/subscribe/{lists[0][0]}" if len(lists) == 1 else "/",
                          lang=settings.language)
    head = render_template("web/archive_head.html", group_name=settings.group_name, feed_url=FEED_PATH)
    response = Response(with_site_bar(found.html, head, bar), 200, mimetype="text/html")
    response.headers["Content-Security-Policy"] = ARCHIVE_CSP
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


@bp.get("/archive/feed.xml")
@bp.get("/feed.xml")
def feed():  # type: ignore[no-untyped-def]
    ctx = web()
    settings = ctx.settings
    entries = [{"title": a.subject, "url": archive_url(settings, a.slug), "id": f"urn:mailer:{a.uid}",
                "updated": a.at.isoformat(), "summary": a.preheader, "content": a.html}
               for a in published(ctx.db, FEED_SIZE)]
    updated = entries[0]["updated"] if entries else "1970-01-01T00:00:00+00:00"
    xml = render_template("web/feed.xml", group_name=settings.group_name,
                          feed_url=settings.base_url.rstrip("/") + "/archive/feed.xml",
                          archive_url=settings.base_url.rstrip("/") + "/archive/",
                          updated=updated, entries=entries)
    response = Response(xml, 200, mimetype="application/atom+xml")
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


def with_site_bar(html: str, head: str, bar: str) -> str:
    """*html* with *head* before its </head> and *bar* first in its <body> (or in front when it has none)."""
    end = _HEAD_END.search(html)
    html = html[:end.start()] + head + html[end.start():] if end else head + html
    body = _BODY.search(html)
    return html[:body.end()] + bar + html[body.end():] if body else bar + html
