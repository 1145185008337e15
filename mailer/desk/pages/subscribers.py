"""The desk's subscriber pages: search, one person, add, unsubscribe and erase (each asks first),
CSV export, and the CSV import (upload, preview, import, rejected rows)."""

from __future__ import annotations

import csv
import io
from typing import Iterator
from urllib.parse import urlencode

from flask import Response, abort, g, redirect, request

from mailer.desk import audit
from mailer.desk import people as desk_people
from mailer.desk.pages import bp, message, render
from mailer.errors import InputError
from mailer.people import search
from mailer.people.erasure import ERASED
from mailer.web.guard import client_ip
from mailer.web.pages import web

NOTICES = {"added": "The subscriber was added.", "unsubscribed": "The subscriptions were ended.",
           "tagged": "The tags were added.", "untagged": "The tag was removed.",
           "erased": "The subscriber was erased: only a keyed hash of the address is kept, to refuse it later."}


def _sentence(exc: Exception) -> str:
    text = str(exc)
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")


def _log(action: str, target: str, detail: str = "") -> None:
    audit.log(web().db, action, actor=g.desk_login.email, target=target, ip=client_ip(request), detail=detail)


def _lists() -> list[tuple[str, str]]:
    return list(desk_people.list_names(web().db).items())


def _filters() -> dict[str, str]:
    args = request.args
    return {"q": args.get("q", "")[:300], "list": args.get("list", "")[:64], "status": args.get("status", "")[:20],
            "tag": args.get("tag", "")[:200]}


def _index(status: int = 200, error: str = "", field: str = "", values: dict | None = None):  # type: ignore[no-untyped-def,type-arg]
    filters = _filters()
    search_error = search_field = ""
    results = None
    try:
        results = desk_people.find(web().db, filters["q"], filters["list"], filters["status"],
                                   request.args.get("after", ""), filters["tag"])
    except desk_people.FieldError as exc:
        search_error, search_field, status = _sentence(exc), exc.field, 422
    chosen = {k: v for k, v in filters.items() if v}
    more = first = None
    if results is not None and results.next_after:
        more = "/desk/subscribers?" + urlencode({**chosen, "after": results.next_after})
    if request.args.get("after"):
        first = "/desk/subscribers" + ("?" + urlencode(chosen) if chosen else "")
    export = "/desk/subscribers/export.csv" + (
        "?" + urlencode({k: v for k, v in filters.items() if v and k in ("list", "status")}) if filters["list"] or filters["status"]
        else "")
    return render("subscribers.html", status, title="Subscribers", section="subscribers", filters=filters,
                  results=results, more=more, first_page=first, export=export,
                  name_cap=search.NAME_CAP,
                  search_error=search_error, search_field=search_field, lists=_lists(),
                  statuses=desk_people.STATUSES, modes=desk_people.MODES, error=error, error_field=field,
                  values=values or {"mode": "confirmed", "lists": []},
                  notice=NOTICES.get(request.args.get("done", "")))


@bp.get("/subscribers")
def subscribers_index():  # type: ignore[no-untyped-def]
    return _index()


@bp.post("/subscribers")
def subscriber_add():  # type: ignore[no-untyped-def]
    ctx, form = web(), request.form
    values = {"email": form.get("email", "")[:400], "name": form.get("name", "")[:400],
              "lists": [s[:64] for s in form.getlist("lists")[:50]], "mode": form.get("mode", "")[:20],
              "welcome": form.get("welcome", "") == "yes"}
    try:
        address, done = desk_people.add(ctx.db, ctx.settings, values["email"], values["name"], values["lists"],
                                        values["mode"], g.desk_login.email, welcome=values["welcome"])
    except desk_people.FieldError as exc:
        return _index(422, _sentence(exc), exc.field, values)
    except desk_people.Suppressed as exc:
        return _index(409, _sentence(exc), "email", values)
    _log("subscriber_add", address.casefold(), f"{values['mode']}{' +welcome' if values['welcome'] else ''}: " +
         ", ".join(f"{slug} {outcome.value.replace('_', ' ')}" for slug, outcome in done))
    return redirect(f"/desk/subscribers/{desk_people.id_of(ctx.db, address)}?done=added", 303)


@bp.get("/subscribers/<int:sid>")
def subscriber_page(sid: int):  # type: ignore[no-untyped-def]
    ctx = web()
    try:
        person = desk_people.person(ctx.db, ctx.settings, sid)
    except desk_people.NoSuchSubscriber:
        abort(404)
    return render("subscriber.html", title=person.email, section="subscribers", person=person,
                  notice=NOTICES.get(request.args.get("done", "")), tag_error="", tags_typed="")


def _confirm_unsubscribe(sid: int, list_slug: str, status: int = 200, error: str = ""):  # type: ignore[no-untyped-def]
    ctx = web()
    try:
        person = desk_people.person(ctx.db, ctx.settings, sid)
    except desk_people.NoSuchSubscriber:
        abort(404)
    return render("subscriber_unsubscribe.html", status, title=f"Unsubscribe {person.email}",
                  section="subscribers", person=person, list_slug=list_slug, error=error)


@bp.get("/subscribers/<int:sid>/unsubscribe")
def subscriber_unsubscribe_form(sid: int):  # type: ignore[no-untyped-def]
    return _confirm_unsubscribe(sid, request.args.get("list", "")[:64])


@bp.post("/subscribers/<int:sid>/unsubscribe")
def subscriber_unsubscribe(sid: int):  # type: ignore[no-untyped-def]
    ctx, list_slug = web(), request.form.get("list", "")[:64]
    try:
        email, changed = desk_people.unsubscribe(ctx.db, ctx.settings, sid, list_slug, g.desk_login.email)
    except desk_people.NoSuchSubscriber:
        abort(404)
    except InputError as exc:
        return _confirm_unsubscribe(sid, list_slug, 422, _sentence(exc))
    _log("subscriber_unsubscribe", email.casefold(), f"list={list_slug or 'all'} ended={changed}")
    return redirect(f"/desk/subscribers/{sid}?done=unsubscribed", 303)


@bp.get("/subscribers/<int:sid>/erase")
def subscriber_erase_form(sid: int):  # type: ignore[no-untyped-def]
    ctx = web()
    try:
        person = desk_people.person(ctx.db, ctx.settings, sid)
    except desk_people.NoSuchSubscriber:
        abort(404)
    return render("subscriber_erase.html", title=f"Erase {person.email}", section="subscribers", person=person)


@bp.post("/subscribers/<int:sid>/erase")
def subscriber_erase(sid: int):  # type: ignore[no-untyped-def]
    ctx = web()
    try:
        desk_people.erase(ctx.db, ctx.settings, sid)
    except desk_people.NoSuchSubscriber:
        abort(404)
    _log("subscriber_erase", ERASED, f"subscriber #{sid}")    # the address is what erasure removes
    return redirect("/desk/subscribers?done=erased", 303)


def _csv_chunks(rows: Iterator[list[str]]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    for n, row in enumerate(rows, 1):
        writer.writerow(row)
        if n % 500 == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


@bp.get("/subscribers/export.csv")
def subscribers_export():  # type: ignore[no-untyped-def]
    filters = _filters()
    try:
        rows = desk_people.export_lines(web().db, filters["list"], filters["status"])
    except InputError as exc:
        return message("Cannot export", _sentence(exc), 422)
    _log("subscriber_export", filters["list"], f"list={filters['list'] or 'all'} status={filters['status'] or 'any'}")
    name = "-".join(["subscribers", *(v for v in (filters["list"], filters["status"]) if v)]) + ".csv"
    response = Response(_csv_chunks(rows), mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    response.headers["Cache-Control"] = "no-store"
    return response


from mailer.desk.pages import subscriber_import  # noqa: E402,F401  (the import's routes)
