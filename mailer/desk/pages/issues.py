"""The desk's issue pages."""

from __future__ import annotations

from mailer.desk.issues import list_issues
from mailer.desk.pages import bp, render
from mailer.web.pages import web


@bp.get("/")
def index():  # type: ignore[no-untyped-def]
    ctx = web()
    return render("index.html", title="Issues", section="issues", issues=list_issues(ctx.settings, ctx.db))
