"""One-click unsubscribe (RFC 8058; STANDARDS B1-B6).

POST to the List-Unsubscribe URL, form-encoded or multipart, with no cookie,
CSRF token or Origin check, unsubscribes at once and answers 200 (never a
redirect); repeating it answers 200 again. GET only shows the button (B5).
Links carry a per-subscriber proof that no key change breaks (B6); an older
signed token that verifies but names nobody (erased) gets the same answer as a
known one, so the page never says whether an address exists (B4).
A ``?send=`` parameter (the send the link was mailed in; not part of the proof) is
passed along for `mailer report`; an unknown or forged one is ignored.
"""

from __future__ import annotations

from flask import Blueprint, request

from mailer.mail.links import SEND_PARAM, UNSUBSCRIBE_PATH, preferences_url
from mailer.mail.tokens import Purpose, TokenData
from mailer.people.linkcheck import check_link
from mailer.people.preferences import leave_by_link, list_name
from mailer.web.pages import message_page, page, web

bp = Blueprint("unsubscribe", __name__)
INVALID = ("Link not valid", "This unsubscribe link is not valid. Please copy the whole link from the "
           "mail, or use the link at the bottom of any newsletter.")


def _read(token: str) -> TokenData | None:
    """The token's data, or None when it does not verify (B4: one answer for every bad token)."""
    return check_link(web().db, web().settings, Purpose.UNSUBSCRIBE, token)


def _send_uid() -> str:
    """The link's send uid when it looks like one (hex), else "" (never an error)."""
    value = request.args.get(SEND_PARAM, "")
    return value if len(value) == 32 and all(c in "0123456789abcdef" for c in value) else ""


@bp.get(UNSUBSCRIBE_PATH)
def show(token: str):  # type: ignore[no-untyped-def]
    data = _read(token)
    if data is None:
        return message_page(*INVALID, 400)
    send_uid = _send_uid()
    action = f"{request.path}?{SEND_PARAM}={send_uid}" if send_uid else request.path
    return page("unsubscribe.html", list_name=list_name(web().db, data.list_slug), action=action)


@bp.post(UNSUBSCRIBE_PATH)
def submit(token: str):  # type: ignore[no-untyped-def]
    data = _read(token)
    if data is None:
        return message_page(*INVALID, 400)
    ctx = web()
    actor = "one-click" if request.form.get("List-Unsubscribe") == "One-Click" else "web"
    name = leave_by_link(ctx.db, ctx.settings, data.subscriber_uid, data.list_slug, actor, _send_uid())
    prefs = preferences_url(ctx.settings, data.subscriber_uid, data.list_slug, data.link_secret)
    return page("unsubscribed.html", list_name=name, preferences_url=prefs)
