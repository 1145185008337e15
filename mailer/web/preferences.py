"""Preferences from the link in every mail: lists, leave one or all, download, erase.

Every change is a POST carrying the form token (C8); erasing asks once more
before it happens. The token never expires (like the unsubscribe link). The
work is `mailer.people.preferences`.
"""

from __future__ import annotations

import json

from flask import Blueprint, Response, request

from mailer.errors import InputError
from mailer.mail.links import PREFERENCES_PATH
from mailer.mail.tokens import Purpose
from mailer.people import preferences
from mailer.people.linkcheck import check_link
from mailer.people.preferences import Overview
from mailer.web.guard import FORM_TOKEN_FIELD, origin_allowed, own_origins
from mailer.web.pages import message_page, page, web

bp = Blueprint("preferences", __name__)
INVALID = ("Link not valid", "This link is not valid. Please use the preferences link at the bottom "
           "of any newsletter.")


def _uid(token: str) -> str | None:
    data = check_link(web().db, web().settings, Purpose.PREFERENCES, token)
    return None if data is None else data.subscriber_uid


def _overview(view: Overview, notice: str = ""):  # type: ignore[no-untyped-def]
    return page("preferences.html", subscriber=view.subscriber, subscriptions=view.subscriptions,
                others=view.others, any_active=view.any_active, notice=notice, action=request.path)


@bp.get(PREFERENCES_PATH)
def show(token: str):  # type: ignore[no-untyped-def]
    uid = _uid(token)
    if uid is None:
        return message_page(*INVALID, 400)
    view = preferences.overview(web().db, uid)
    return message_page(*INVALID, 404) if view is None else _overview(view)


@bp.post(PREFERENCES_PATH)
def change(token: str):  # type: ignore[no-untyped-def]
    ctx = web()
    if not origin_allowed(request, own_origins(ctx.settings, request)):
        return message_page("Not accepted", "This request came from another website.", 403)
    if not ctx.forms.valid(request.form.get(FORM_TOKEN_FIELD)):
        return message_page("Page expired", "This page has expired. Please open the link again.", 403)
    uid = _uid(token)
    if uid is None:
        return message_page(*INVALID, 400)
    action = request.form.get("action", "")
    db, settings = ctx.db, ctx.settings
    if action in ("unsubscribe", "unsubscribe_all"):
        slug = request.form.get("list", "") if action == "unsubscribe" else None
        try:
            left = preferences.leave(db, settings, uid, slug, actor="preferences")
        except InputError:
            return message_page("Unknown list", f"There is no list {(slug or '')[:64]!r}.", 404)
        if left is None:
            return message_page(*INVALID, 404)
        view, name = left
        return _overview(view, notice=f"You have left {name}." if slug else "You have left all our lists.")
    if action == "download":
        data = preferences.export(db, settings, uid)
        if data is None:
            return message_page(*INVALID, 404)
        return Response(json.dumps(data, indent=2, default=str), mimetype="application/json",
                        headers={"Content-Disposition": 'attachment; filename="my-data.json"'})
    if action == "erase_confirmed":
        if not preferences.erase(db, settings, uid):
            return message_page(*INVALID, 404)
        return message_page("Erased", "Your data has been erased. We keep only a keyed hash of your "
                            "address so that we never mail it again.", 200)
    if preferences.overview(db, uid) is None:
        return message_page(*INVALID, 404)
    if action == "erase":
        return page("erase.html", action=request.path)
    return message_page("Unknown action", "This form asked for something we do not know.", 400)
