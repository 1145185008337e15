"""Preferences from the signed link in every mail: lists, leave one or all, download, erase.

Every change is a POST carrying the form token (C8); erasing asks once more
before it happens. The token never expires (like the unsubscribe link).
"""

from __future__ import annotations

import json

from flask import Blueprint, Response, request
from sqlalchemy import select

from mailer.mail.links import PREFERENCES_PATH
from mailer.models import MailingList, Reason, Subscriber, SubscriptionStatus
from mailer.people.subscriptions import unsubscribe
from mailer.mail.tokens import Purpose, TokenError, read_token
from mailer.web.guard import FORM_TOKEN_FIELD, origin_allowed, own_origins
from mailer.web.pages import message_page, page, web

bp = Blueprint("preferences", __name__)
INVALID = ("Link not valid", "This link is not valid. Please use the preferences link at the bottom "
           "of any newsletter.")


def _subscriber(session, token: str) -> Subscriber | None:  # type: ignore[no-untyped-def]
    data = read_token(web().settings, Purpose.PREFERENCES, token)
    return session.scalar(select(Subscriber).where(Subscriber.uid == data.subscriber_uid))


def _overview(subscriber: Subscriber, session, status: int = 200, notice: str = ""):  # type: ignore[no-untyped-def]
    subs = sorted(subscriber.subscriptions, key=lambda s: s.mailing_list.name)
    mine = {s.list_id for s in subs}
    others = list(session.scalars(select(MailingList).where(MailingList.id.not_in(mine) if mine else True)
                                  .order_by(MailingList.name)))
    active = [s for s in subs if s.status is not SubscriptionStatus.UNSUBSCRIBED]
    return page("preferences.html", status, subscriber=subscriber, subscriptions=subs, others=others,
                any_active=bool(active), notice=notice, action=request.path)


@bp.get(PREFERENCES_PATH)
def show(token: str):  # type: ignore[no-untyped-def]
    with web().db.session() as session:
        try:
            subscriber = _subscriber(session, token)
        except TokenError:
            return message_page(*INVALID, 400)
        if subscriber is None:
            return message_page(*INVALID, 404)
        return _overview(subscriber, session)


@bp.post(PREFERENCES_PATH)
def change(token: str):  # type: ignore[no-untyped-def]
    ctx = web()
    if not origin_allowed(request, own_origins(ctx.settings, request)):
        return message_page("Not accepted", "This request came from another website.", 403)
    if not ctx.forms.valid(request.form.get(FORM_TOKEN_FIELD)):
        return message_page("Page expired", "This page has expired. Please open the link again.", 403)
    action = request.form.get("action", "")
    with ctx.db.session() as session:
        try:
            subscriber = _subscriber(session, token)
        except TokenError:
            return message_page(*INVALID, 400)
        if subscriber is None:
            return message_page(*INVALID, 404)
        if action == "unsubscribe":
            slug = request.form.get("list", "")
            mlist = session.scalar(select(MailingList).where(MailingList.slug == slug))
            if mlist is None:
                return message_page("Unknown list", f"There is no list {slug[:64]!r}.", 404)
            unsubscribe(session, ctx.settings, subscriber, mlist, Reason.USER, actor="preferences")
            return _overview(subscriber, session, notice=f"You have left {mlist.name}.")
        if action == "unsubscribe_all":
            unsubscribe(session, ctx.settings, subscriber, None, Reason.USER, actor="preferences")
            return _overview(subscriber, session, notice="You have left all our lists.")
        if action == "download":
            from mailer.people.dataexport import person_data

            body = json.dumps(person_data(session, ctx.settings, subscriber), indent=2, default=str)
            return Response(body, mimetype="application/json", headers={
                "Content-Disposition": 'attachment; filename="my-data.json"'})
        if action == "erase":
            return page("erase.html", action=request.path)
        if action == "erase_confirmed":
            from mailer.people.erasure import erase_person

            erase_person(session, ctx.settings, subscriber)
            return message_page("Erased", "Your data has been erased. We keep only a keyed hash of your "
                                "address so that we never mail it again.", 200)
    return message_page("Unknown action", "This form asked for something we do not know.", 400)
