"""Tags on one subscriber's desk page: add some, remove one (`mailer subscribers tag` / `untag`,
through mailer.people.tagging); a bad tag is 422 naming it, with nothing added."""

from __future__ import annotations

import re

from flask import abort, g, redirect, request

from mailer.desk import audit, segmentcounts
from mailer.desk import people as desk_people
from mailer.desk.pages import bp, render
from mailer.errors import InputError
from mailer.people import tagging
from mailer.web.guard import client_ip
from mailer.web.pages import web

MAX_TAGS = 20


def _email(sid: int) -> str:
    try:
        return desk_people.email_of(web().db, sid)
    except desk_people.NoSuchSubscriber:
        abort(404)


def _log(action: str, email: str, detail: str) -> None:
    segmentcounts.forget(web().db)        # tags changed: segments count afresh
    audit.log(web().db, action, actor=g.desk_login.email, target=email.casefold(), ip=client_ip(request),
              detail=detail)


@bp.post("/subscribers/<int:sid>/tags")
def subscriber_tag(sid: int):  # type: ignore[no-untyped-def]
    ctx, email = web(), _email(sid)
    typed = request.form.get("tags", "")[:4000]
    tags = [t for t in re.split(r"[\s,]+", typed) if t]
    try:
        if not tags:
            raise InputError("tags: type one or more tags, separated by spaces or commas")
        if len(tags) > MAX_TAGS:
            raise InputError(f"tags: at most {MAX_TAGS} at once")
        added = tagging.tag(ctx.db, email, tags)
    except InputError as exc:
        text = str(exc)
        person = desk_people.person(ctx.db, ctx.settings, sid)
        return render("subscriber.html", 422, title=person.email, section="subscribers", person=person,
                      notice="", tag_error=text[:1].upper() + text[1:], tags_typed=typed[:500])
    _log("subscriber_tag", email, f"{added} added: {' '.join(tags)[:500]}")
    return redirect(f"/desk/subscribers/{sid}?done=tagged#tags", 303)


@bp.post("/subscribers/<int:sid>/tags/remove")
def subscriber_untag(sid: int):  # type: ignore[no-untyped-def]
    ctx, email = web(), _email(sid)
    tag = request.form.get("tag", "")[:200]
    try:
        removed = tagging.untag(ctx.db, email, [tag])
    except InputError:
        abort(404)          # not a tag at all: the form never sends one
    if not removed:
        abort(404)
    _log("subscriber_untag", email, tag)
    return redirect(f"/desk/subscribers/{sid}?done=untagged#tags", 303)
