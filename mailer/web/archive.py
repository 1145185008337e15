"""The public archive of sent issues (web versions, no personal data) and its Atom feed."""

from __future__ import annotations

from flask import Blueprint, Response, abort, render_template
from sqlalchemy import select

from mailer.mail.links import ARCHIVE_PATH, archive_url
from mailer.models import Send, SendStatus
from mailer.web.guard import ARCHIVE_CSP
from mailer.web.pages import page, web

bp = Blueprint("archive", __name__)
PUBLIC = (SendStatus.DONE, SendStatus.SENDING)
FEED_SIZE = 20


def published(session, limit: int | None = None) -> list[Send]:  # type: ignore[no-untyped-def]
    """The newest public send of each issue, newest first."""
    rows = session.scalars(select(Send).where(Send.status.in_(PUBLIC), Send.archive_html != "")
                           .order_by(Send.started_at.desc(), Send.id.desc()))
    seen: dict[str, Send] = {}
    for send in rows:
        seen.setdefault(send.issue_slug, send)
        if limit and len(seen) >= limit:
            break
    return list(seen.values())


@bp.get("/archive/")
@bp.get("/archive")
def index():  # type: ignore[no-untyped-def]
    ctx = web()
    with ctx.db.session() as session:
        issues = [(s.subject, archive_url(ctx.settings, s.issue_slug), s.started_at or s.created_at)
                  for s in published(session)]
    html, status = page("archive.html", issues=issues)
    response = Response(html, status)
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


@bp.get(ARCHIVE_PATH)
def issue(slug: str):  # type: ignore[no-untyped-def]
    with web().db.session() as session:
        send = session.scalar(select(Send).where(Send.issue_slug == slug, Send.status.in_(PUBLIC),
                                                 Send.archive_html != "")
                              .order_by(Send.started_at.desc(), Send.id.desc()).limit(1))
        if send is None:
            abort(404)
        html = send.archive_html
    response = Response(html, 200, mimetype="text/html")
    response.headers["Content-Security-Policy"] = ARCHIVE_CSP
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


@bp.get("/archive/feed.xml")
@bp.get("/feed.xml")
def feed():  # type: ignore[no-untyped-def]
    ctx = web()
    settings = ctx.settings
    with ctx.db.session() as session:
        sends = published(session, FEED_SIZE)
        entries = [{"title": s.subject, "url": archive_url(settings, s.issue_slug),
                    "id": f"urn:mailer:{s.uid}", "updated": (s.started_at or s.created_at).isoformat(),
                    "summary": s.preheader, "content": s.archive_html} for s in sends]
    updated = entries[0]["updated"] if entries else "1970-01-01T00:00:00+00:00"
    xml = render_template("web/feed.xml", group_name=settings.group_name,
                          feed_url=settings.base_url.rstrip("/") + "/archive/feed.xml",
                          archive_url=settings.base_url.rstrip("/") + "/archive/",
                          updated=updated, entries=entries)
    response = Response(xml, 200, mimetype="application/atom+xml")
    response.headers["Cache-Control"] = "public, max-age=300"
    return response
