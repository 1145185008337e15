"""The desk's sending pages: an issue's send page (a test to me, send now after a confirmation with
the audience per list, schedule in the group's zone), a send's progress (and its JSON for
progress.js), its delivery report with the failures, and the retries of failed or unknown rows."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from flask import g, jsonify, redirect, request

from mailer.desk import audit, sendreport
from mailer.desk import sending as desk_sending
from mailer.desk.pages import bp, message, render
from mailer.desk.schedules import liveness
from mailer.errors import InputError, MailerError
from mailer.web.guard import client_ip
from mailer.web.pages import web

NOTICES = {"started": "The send has started: the mailer worker delivers it. This page shows how far it got.",
           "failed": "The failed rows were queued again: the mailer worker retries them now.",
           "unknown": "The unknown rows were queued again: the mailer worker sends them now.",
           "resumed": "The send continues: the mailer worker sends the rest."}
MAX_LISTS = 50


def _sentence(exc: Exception) -> str:
    text = str(exc)
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")


def _chosen() -> list[str]:
    """The lists the form (or the query string) chose; [] for the issue's own."""
    source = request.form if request.method == "POST" else request.args
    return [s.strip()[:100] for s in source.getlist("list")[:MAX_LISTS] if s.strip()]


def audience_form() -> desk_sending.AudienceForm:
    """Who on the lists the form (or the query string) chose: tags, a segment, exclusions."""
    source = request.form if request.method == "POST" else request.args
    return desk_sending.AudienceForm(
        tags=source.get("tags", "")[:2000], segment=source.get("segment", "").strip()[:100],
        exclude_lists=tuple(s.strip()[:100] for s in source.getlist("exclude_list")[:MAX_LISTS] if s.strip()),
        exclude_segment=source.get("exclude_segment", "").strip()[:100])


def _audit(action: str, target: str, detail: str = "") -> None:
    audit.log(web().db, action, actor=g.desk_login.email, target=target, ip=client_ip(request), detail=detail)


def _send_page(slug: str, status: int = 200, *, error: str = "", action: str = "",
               notice: str = "", warnings: list[str] | None = None) -> tuple[str, int]:
    """The issue's send page; an issue that does not compose shows only why (422)."""
    ctx = web()
    try:
        composed = desk_sending.compose(ctx.settings, slug)
    except desk_sending.NoSuchIssue as exc:
        return message("No such issue", _sentence(exc), 404)
    except desk_sending.ComposeFailed as exc:
        return render("send.html", 422, title=f"Send {slug}", section="issues", slug=slug, composed=None,
                      broken=_sentence(exc), sends=desk_sending.sends_of(ctx.db, slug))
    chosen = _chosen() if error else []
    return render("send.html", status, title=f"Send {composed.subject}", section="issues", slug=slug,
                  composed=composed, broken="", error=error, action=action, notice=notice,
                  warnings=warnings if warnings is not None else list(composed.warnings),
                  me=g.desk_login.email, backend=ctx.settings.backend, redirect_to=ctx.settings.dev_redirect,
                  choices=desk_sending.list_choices(ctx.db, composed.lists, chosen),
                  all_lists=desk_sending.list_choices(ctx.db, (), ()), segments=desk_sending.segment_names(ctx.db),
                  who=audience_form() if error else desk_sending.AudienceForm(),
                  zone=ctx.settings.schedule_timezone, values=request.form if error else {},
                  sends=desk_sending.sends_of(ctx.db, slug))


def _refused(exc: MailerError, slug: str, action: str) -> tuple[str, int]:
    """The send page with the error and its status: 404, 409 (already sent), 422 (a field, compose)."""
    if isinstance(exc, desk_sending.NoSuchIssue):
        return message("No such issue", _sentence(exc), 404)
    if isinstance(exc, desk_sending.ComposeFailed):
        return _send_page(slug)
    status = 409 if isinstance(exc, desk_sending.AlreadySent) else 422 if isinstance(exc, InputError) else 502
    return _send_page(slug, status, error=_sentence(exc), action=action)


@bp.get("/issues/<slug>/send")
def send_page(slug: str):  # type: ignore[no-untyped-def]
    # the address is the session's (or dev_redirect), never a query parameter someone could craft
    to = web().settings.dev_redirect or g.desk_login.email
    return _send_page(slug, notice=f"A test was sent to {to}." if request.args.get("done") == "test" else "")


@bp.post("/issues/<slug>/send/test")
def send_test(slug: str):  # type: ignore[no-untyped-def]
    ctx = web()
    try:
        to = desk_sending.test_send(ctx.db, ctx.settings, slug, g.desk_login.email)
    except MailerError as exc:
        return _refused(exc, slug, "test")
    _audit("send_test", f"issue {slug}", f"to={to}")
    return redirect(f"/desk/issues/{quote(slug)}/send?done=test", 303)


@bp.get("/issues/<slug>/send/now")
def send_confirm(slug: str):  # type: ignore[no-untyped-def]
    return _confirm_page(slug)


def _confirm_page(slug: str, status: int = 200, error: str = "") -> tuple[str, int]:
    ctx = web()
    who = audience_form()
    try:
        confirmation = desk_sending.confirmation(ctx.db, ctx.settings, slug, _chosen(), who)
    except MailerError as exc:
        return _refused(exc, slug, "now")
    return render("send_confirm.html", status, title=f"Send {confirmation.subject}?", section="issues", slug=slug,
                  c=confirmation, who=who.query(), error=error)


@bp.post("/issues/<slug>/send/now")
def send_start(slug: str):  # type: ignore[no-untyped-def]
    ctx = web()
    chosen, who = _chosen(), audience_form()
    expected = request.form.get("expected", "")
    try:
        send_id = desk_sending.send_now(ctx.db, ctx.settings, slug, chosen, who,
                                        int(expected) if expected.isdigit() else None)
    except desk_sending.AudienceChanged as exc:
        return _confirm_page(slug, 409, _sentence(exc))
    except MailerError as exc:
        return _refused(exc, slug, "now")
    limited = " ".join(f"{k}={v}" for k, v in who.query())
    _audit("send_now", f"issue {slug}", f"send {send_id}" + (f" to {', '.join(chosen)}" if chosen else "")
           + (f" ({limited})" if limited else ""))
    return redirect(f"/desk/sends/{send_id}?done=started", 303)


@bp.post("/issues/<slug>/send/schedule")
def send_schedule(slug: str):  # type: ignore[no-untyped-def]
    ctx = web()
    at, who = request.form.get("at", "")[:100], audience_form()
    try:
        schedule_id, warnings = desk_sending.schedule(ctx.db, ctx.settings, slug, at, _chosen(), who)
    except MailerError as exc:
        return _refused(exc, slug, "schedule")
    limited = " ".join(f"{k}={v}" for k, v in who.query())
    _audit("send_schedule", f"issue {slug}", f"schedule {schedule_id} at={at} ({ctx.settings.schedule_timezone})"
           + (f" ({limited})" if limited else ""))
    return redirect(f"/desk/schedules/{schedule_id}", 303)


def _progress_context(send_id: int) -> dict[str, Any] | None:
    ctx = web()
    try:
        now = sendreport.progress(ctx.db, send_id)
    except sendreport.NoSuchSend:
        return None
    return {"p": now, "local": lambda when: sendreport.local(when, ctx.settings),
            "senders": liveness(ctx.db, ctx.settings).senders}


@bp.get("/sends/<int:send_id>")
def send_progress(send_id: int):  # type: ignore[no-untyped-def]
    context = _progress_context(send_id)
    if context is None:
        return message("No such send", f"There is no send with id {send_id}.", 404)
    return render("send_progress.html", title=f"Send #{send_id}", section="issues", error="",
                  notice=NOTICES.get(request.args.get("done", ""), ""), **context)


@bp.get("/sends/<int:send_id>/progress.json")
def send_progress_json(send_id: int):  # type: ignore[no-untyped-def]
    try:
        now = sendreport.progress(web().db, send_id)
    except sendreport.NoSuchSend:
        return jsonify({"error": f"no send with id {send_id}"}), 404
    response = jsonify(now.as_json())
    response.headers["Cache-Control"] = "no-store"
    return response


def _report_page(send_id: int, status: int = 200, error: str = "") -> tuple[str, int]:
    ctx = web()
    try:
        found = sendreport.report(ctx.db, send_id)
    except sendreport.NoSuchSend as exc:
        return message("No such send", _sentence(exc), 404)
    return render("report.html", status, title=f"Delivery report of send #{send_id}", section="issues",
                  r=found, error=error, local=lambda when: sendreport.local(when, ctx.settings))


@bp.get("/sends/<int:send_id>/report")
def send_report(send_id: int):  # type: ignore[no-untyped-def]
    return _report_page(send_id)


@bp.get("/sends/<int:send_id>/retry")
def send_retry_confirm(send_id: int):  # type: ignore[no-untyped-def]
    what = "unknown" if request.args.get("what") == "unknown" else "failed"
    try:
        found = sendreport.report(web().db, send_id)
    except sendreport.NoSuchSend as exc:
        return message("No such send", _sentence(exc), 404)
    return render("send_retry.html", title=f"Retry the {what} rows of send #{send_id}?", section="issues",
                  r=found, what=what)


@bp.post("/sends/<int:send_id>/retry")
def send_retry(send_id: int):  # type: ignore[no-untyped-def]
    what = request.form.get("what", "")
    if what not in ("failed", "unknown"):
        return _report_page(send_id, 422, error="What to retry: choose failed or unknown rows.")
    try:
        queued = sendreport.retry(web().db, send_id, unknown=what == "unknown")
    except sendreport.NoSuchSend as exc:
        return message("No such send", _sentence(exc), 404)
    except InputError as exc:
        return _report_page(send_id, 409, error=_sentence(exc))
    _audit(f"send_retry_{what}", f"send {send_id}", f"{queued} row(s) queued")
    return redirect(f"/desk/sends/{send_id}?done={what}", 303)


@bp.post("/sends/<int:send_id>/resume")
def send_resume(send_id: int):  # type: ignore[no-untyped-def]
    try:
        unknown = sendreport.resume(web().db, send_id)
    except sendreport.NoSuchSend as exc:
        return message("No such send", _sentence(exc), 404)
    except InputError as exc:
        context = _progress_context(send_id)
        return render("send_progress.html", 409, title=f"Send #{send_id}", section="issues",
                      error=_sentence(exc), notice="", **(context or {}))
    _audit("send_resume", f"send {send_id}", f"{unknown} row(s) found in flight, marked unknown" if unknown else "")
    return redirect(f"/desk/sends/{send_id}?done=resumed", 303)
