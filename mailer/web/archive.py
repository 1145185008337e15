"""The public archive of sent issues (web versions, no personal data) and its Atom feed."""

from __future__ import annotations

from flask import Blueprint, Response, abort, render_template

from mailer.content.archive import archived_html, published
from mailer.mail.links import ARCHIVE_PATH, archive_url
from mailer.web.guard import ARCHIVE_CSP
from mailer.web.pages import page, web

bp = Blueprint("archive", __name__)
FEED_SIZE = 20


@bp.get("/archive/")
@bp.get("/archive")
def index():  # type: ignore[no-untyped-def]
    ctx = web()
    issues = [(a.subject, archive_url(ctx.settings, a.slug), a.at) for a in published(ctx.db)]
    html, status = page("archive.html", issues=issues)
    response = Response(html, status)
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


@bp.get(ARCHIVE_PATH)
def issue(slug: str):  # type: ignore[no-untyped-def]
    html = archived_html(web().db, slug)
    if html is None:
        abort(404)
    response = Response(html, 200, mimetype="text/html")
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
