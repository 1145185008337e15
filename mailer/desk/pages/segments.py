"""The desk's segment pages: every saved segment with how many it selects, a new one (tried before it
is saved), one segment's page (its count and a few addresses, change its expression), and removal
after a confirmation. The language and the store are mailer.people.segments and tagging, as for
`mailer segments`."""

from __future__ import annotations

from urllib.parse import quote

from flask import g, redirect, request

from mailer.desk import audit, segmentcounts
from mailer.desk.pages import bp, message, render
from mailer.errors import InputError
from mailer.people import tagging
from mailer.people.segments import MAX_LENGTH
from mailer.web.guard import client_ip
from mailer.web.pages import web

NOTICES = {"created": "The segment was saved.", "saved": "The segment was changed.",
           "removed": "The segment was removed."}
SAMPLE = 10


def _sentence(exc: Exception) -> str:
    text = str(exc)
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")


def _field(exc: InputError) -> str:
    """The form field a refusal is about: the name, or else the expression."""
    return "name" if str(exc).startswith("segment name") or isinstance(exc, tagging.SegmentExists) else "expression"


def _trial(expression: str) -> tuple[int, list[str]]:
    db = web().db
    return tagging.count_of(db, expression), tagging.sample_of(db, expression, SAMPLE)


def _index(status: int = 200, *, error: str = "", field: str = "", values: dict[str, str] | None = None,
           tried: tuple[int, list[str]] | None = None) -> tuple[str, int]:
    return render("segments.html", status, title="Segments", section="segments",
                  segments=segmentcounts.views(web().db), error=error, error_field=field, values=values or {},
                  tried=tried, max_length=MAX_LENGTH, notice=NOTICES.get(request.args.get("done", ""), ""))


def _form() -> dict[str, str]:
    return {"name": request.form.get("name", "")[:200], "expression": request.form.get("expression", "")[:MAX_LENGTH * 2]}


@bp.get("/segments")
def segments_index():  # type: ignore[no-untyped-def]
    return _index()


@bp.post("/segments/try")
def segments_try():  # type: ignore[no-untyped-def]
    """The form's *Try it*: what the expression would select now; nothing is saved. A POST, so that
    the form's token never lands in a URL."""
    values = _form()
    try:
        return _index(values=values, tried=_trial(values["expression"]))
    except InputError as exc:
        return _index(422, error=_sentence(exc), field="expression", values=values)


@bp.post("/segments")
def segments_add():  # type: ignore[no-untyped-def]
    ctx, values = web(), _form()
    try:
        count = tagging.add_segment(ctx.db, values["name"], values["expression"])
    except tagging.SegmentExists as exc:   # the CLI's line names a command: the desk says where to go
        taken = values["name"].strip().lower()
        return _index(409, error=f"Segment {taken!r} exists already: open it to change its expression, or "
                                 "choose another name.", field=_field(exc), values=values)
    except InputError as exc:
        return _index(422, error=_sentence(exc), field=_field(exc), values=values)
    name = values["name"].strip().lower()
    segmentcounts.forget(ctx.db)
    audit.log(ctx.db, "segment_add", actor=g.desk_login.email, target=name, ip=client_ip(request),
              detail=f"{count} now: {' '.join(values['expression'].split())[:500]}")
    return redirect(f"/desk/segments/{quote(name)}?done=created", 303)


def _segment_page(name: str, status: int = 200, *, error: str = "", expression: str | None = None,
                  tried: tuple[int, list[str]] | None = None) -> tuple[str, int]:
    db = web().db
    try:
        saved = tagging.segment_expression(db, name)
    except tagging.NoSuchSegment as exc:
        return message("No such segment", _sentence(exc), 404)
    count, sample = segmentcounts.counted(db, saved, SAMPLE)
    return render("segment.html", status, title=f"Segment {name}", section="segments", name=name.lower(),
                  saved=saved, count=count, sample=sample, error=error,
                  expression=saved if expression is None else expression, max_length=MAX_LENGTH, tried=tried,
                  notice=NOTICES.get(request.args.get("done", ""), ""))


@bp.get("/segments/<name>")
def segment_page(name: str):  # type: ignore[no-untyped-def]
    return _segment_page(name)


@bp.post("/segments/<name>/try")
def segment_try(name: str):  # type: ignore[no-untyped-def]
    """*Try it* on a segment's page: what the changed expression would select; nothing is saved."""
    expression = _form()["expression"]
    try:
        tried = _trial(expression)
    except InputError as exc:
        return _segment_page(name, 422, error=_sentence(exc), expression=expression)
    return _segment_page(name, expression=expression, tried=tried)


@bp.post("/segments/<name>")
def segment_edit(name: str):  # type: ignore[no-untyped-def]
    ctx = web()
    expression = _form()["expression"]
    try:
        count = tagging.edit_segment(ctx.db, name, expression)
    except tagging.NoSuchSegment as exc:
        return message("No such segment", _sentence(exc), 404)
    except InputError as exc:
        return _segment_page(name, 422, error=_sentence(exc), expression=expression)
    segmentcounts.forget(ctx.db)
    audit.log(ctx.db, "segment_edit", actor=g.desk_login.email, target=name.lower(), ip=client_ip(request),
              detail=f"{count} now: {' '.join(expression.split())[:500]}")
    return redirect(f"/desk/segments/{quote(name.lower())}?done=saved", 303)


@bp.get("/segments/<name>/remove")
def segment_remove_form(name: str):  # type: ignore[no-untyped-def]
    try:
        expression = tagging.segment_expression(web().db, name)
    except tagging.NoSuchSegment as exc:
        return message("No such segment", _sentence(exc), 404)
    return render("segment_remove.html", title=f"Remove segment {name}?", section="segments", name=name.lower(),
                  expression=expression)


@bp.post("/segments/<name>/remove")
def segment_remove(name: str):  # type: ignore[no-untyped-def]
    ctx = web()
    try:
        expression = tagging.segment_expression(ctx.db, name)
        tagging.remove_segment(ctx.db, name)
    except tagging.NoSuchSegment as exc:
        return message("No such segment", _sentence(exc), 404)
    segmentcounts.forget(ctx.db)
    audit.log(ctx.db, "segment_remove", actor=g.desk_login.email, target=name.lower(), ip=client_ip(request),
              detail=expression[:500])
    return redirect("/desk/segments?done=removed", 303)
