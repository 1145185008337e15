"""The desk's schedule pages: every schedule with its next run, whether the scheduler and the
sending processes are alive, and one schedule's move, refresh and cancel (with a confirmation)."""

from __future__ import annotations

from flask import g, redirect, request

from mailer.desk import audit
from mailer.desk import schedules as desk_schedules
from mailer.desk.pages import bp, message, render
from mailer.errors import InputError
from mailer.web.guard import client_ip
from mailer.web.pages import web

NOTICES = {"moved": "The schedule was moved.", "cancelled": "The schedule was cancelled: nothing of it will be sent."}


def _sentence(exc: Exception) -> str:
    text = str(exc)
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")


def _refused(exc: InputError, schedule_id: int, action: str) -> tuple[str, int]:
    """The schedule's page with the error, or a message page when it does not exist."""
    if isinstance(exc, desk_schedules.NoSuchSchedule):
        return message("No such schedule", _sentence(exc), 404)
    status = 409 if isinstance(exc, desk_schedules.ScheduleState) else 422
    return _schedule_page(schedule_id, status, error=_sentence(exc), action=action)


def _schedule_page(schedule_id: int, status: int = 200, *, error: str = "", action: str = "",
                   notice: str = "", warnings: list[str] | None = None) -> tuple[str, int]:
    ctx = web()
    try:
        row = desk_schedules.find(ctx.db, ctx.settings, schedule_id)
    except desk_schedules.NoSuchSchedule as exc:
        return message("No such schedule", _sentence(exc), 404)
    return render("schedule.html", status, title=f"Schedule {row.id}: {row.issue}", section="schedules", row=row,
                  zone=ctx.settings.schedule_timezone, error=error, action=action, warnings=warnings or [],
                  values=request.form if error else {},
                  notice=notice or NOTICES.get(request.args.get("done", ""), ""))


def _audit(action: str, schedule_id: int, detail: str = "") -> None:
    audit.log(web().db, action, actor=g.desk_login.email, target=f"schedule {schedule_id}", ip=client_ip(request),
              detail=detail)


@bp.get("/schedules")
def schedules_index():  # type: ignore[no-untyped-def]
    ctx = web()
    everything = request.args.get("all") == "1"
    return render("schedules.html", title="Schedules", section="schedules", everything=everything,
                  rows=desk_schedules.rows(ctx.db, ctx.settings, include_finished=everything),
                  live=desk_schedules.liveness(ctx.db, ctx.settings), zone=ctx.settings.schedule_timezone,
                  local=lambda when: desk_schedules.local(when, desk_schedules.group_zone(ctx.settings)),
                  notice=NOTICES.get(request.args.get("done", ""), ""))


@bp.get("/schedules/<int:schedule_id>")
def schedule_page(schedule_id: int):  # type: ignore[no-untyped-def]
    return _schedule_page(schedule_id)


@bp.post("/schedules/<int:schedule_id>/move")
def schedule_move(schedule_id: int):  # type: ignore[no-untyped-def]
    ctx = web()
    at, cron = request.form.get("at", "")[:100], request.form.get("cron", "")[:200]
    try:
        desk_schedules.move(ctx.db, ctx.settings, schedule_id, at=at, cron=cron)
    except InputError as exc:
        return _refused(exc, schedule_id, "move")
    _audit("schedule_move", schedule_id, f"at={at}" if at else f"cron={cron}")
    return redirect(f"/desk/schedules/{schedule_id}?done=moved", 303)


@bp.post("/schedules/<int:schedule_id>/refresh")
def schedule_refresh(schedule_id: int):  # type: ignore[no-untyped-def]
    ctx = web()
    try:
        warnings = desk_schedules.refresh(ctx.db, ctx.settings, schedule_id)
    except InputError as exc:
        return _refused(exc, schedule_id, "refresh")
    _audit("schedule_refresh", schedule_id)
    return _schedule_page(schedule_id, notice="The issue was composed again: the current reports will go out.",
                          warnings=warnings)


@bp.get("/schedules/<int:schedule_id>/cancel")
def schedule_cancel_form(schedule_id: int):  # type: ignore[no-untyped-def]
    ctx = web()
    try:
        row = desk_schedules.find(ctx.db, ctx.settings, schedule_id)
    except desk_schedules.NoSuchSchedule as exc:
        return message("No such schedule", _sentence(exc), 404)
    return render("schedule_cancel.html", title=f"Cancel schedule {row.id}?", section="schedules", row=row)


@bp.post("/schedules/<int:schedule_id>/cancel")
def schedule_cancel(schedule_id: int):  # type: ignore[no-untyped-def]
    try:
        desk_schedules.cancel(web().db, schedule_id)
    except InputError as exc:
        return _refused(exc, schedule_id, "cancel")
    _audit("schedule_cancel", schedule_id)
    return redirect("/desk/schedules?done=cancelled", 303)
