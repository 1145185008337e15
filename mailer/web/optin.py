"""Confirm a sign-up: the link's GET shows a button (C2); only the POST confirms.

Expired, foreign or tampered tokens get a friendly page with a 4xx status
and change nothing (C3). A replayed link never re-subscribes someone who
left since: only a pending subscription can be confirmed.
"""

from __future__ import annotations

from flask import Blueprint, request

from mailer.mail.links import CONFIRM_PATH
from mailer.mail.tokens import Purpose, TokenError, TokenExpired, read_token
from mailer.models import SubscriptionStatus
from mailer.signups.confirmations import Confirmed, confirm_signup, signup_state
from mailer.web.guard import FORM_TOKEN_FIELD, client_ip, origin_allowed, own_origins
from mailer.web.pages import message_page, page, web

bp = Blueprint("optin", __name__)

INVALID = ("Link not valid", "This link is not valid. Please copy the whole link from the mail, "
           "or sign up again.")
EXPIRED = ("Link expired", "This confirmation link has expired. Please sign up again to get a new one.")
USED = ("Link already used", "This link cannot be used any more: you have left the list since. "
        "To come back, please sign up again.")


def _resolve(token: str):  # type: ignore[no-untyped-def]
    """(data, None) for a good token, or (None, error page)."""
    try:
        return read_token(web().settings, Purpose.CONFIRM, token), None
    except TokenExpired:
        return None, message_page(*EXPIRED, 410)
    except TokenError:
        return None, message_page(*INVALID, 400)


def _already(list_name: str):  # type: ignore[no-untyped-def]
    return message_page("Already confirmed", f"You are already subscribed to {list_name}.", 200)


@bp.get(CONFIRM_PATH)
def show(token: str):  # type: ignore[no-untyped-def]
    data, error = _resolve(token)
    if error:
        return error
    status, list_name = signup_state(web().db, data.subscriber_uid, data.list_slug)
    if status is None:
        return message_page(*INVALID, 400)
    if status is SubscriptionStatus.CONFIRMED:
        return _already(list_name)
    if status is SubscriptionStatus.UNSUBSCRIBED:
        return message_page(*USED, 409)
    return page("confirm.html", list_name=list_name, action=request.path)


@bp.post(CONFIRM_PATH)
def submit(token: str):  # type: ignore[no-untyped-def]
    ctx = web()
    if not origin_allowed(request, own_origins(ctx.settings, request)):
        return message_page("Not accepted", "This request came from another website.", 403)
    if not ctx.forms.valid(request.form.get(FORM_TOKEN_FIELD)):
        return message_page("Page expired", "This page has expired. Please open the link from the mail "
                            "again and press the button.", 403)
    data, error = _resolve(token)
    if error:
        return error
    done, list_name = confirm_signup(ctx.db, ctx.settings, data.subscriber_uid, data.list_slug,
                                     ip=client_ip(request))
    if done is Confirmed.UNKNOWN:
        return message_page(*INVALID, 400)
    if done is Confirmed.LEFT:
        return message_page(*USED, 409)
    if done is Confirmed.ALREADY:
        return _already(list_name)
    return message_page("Subscribed", f"Thank you: you are now subscribed to {list_name}.", 200)
