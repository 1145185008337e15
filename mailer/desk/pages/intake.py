"""The desk's intake page: the reports mailed to the submission address and held, each with its
text, images and dropped attachments, and approve or reject (the same functions as
`mailer intake approve` and `reject`, mailer.submissions.held)."""

from __future__ import annotations

from flask import g, redirect, request

from mailer.desk import audit
from mailer.desk.pages import bp, message, render
from mailer.errors import InputError
from mailer.submissions import held as intake_held
from mailer.web.guard import client_ip
from mailer.web.pages import web

NOTICES = {"approved": "The report was approved: it is in the digest's inbox for the next run.",
           "rejected": "The report was rejected and its files deleted."}


def _sentence(exc: Exception) -> str:
    text = str(exc)
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")


def _page(status: int = 200, *, error: str = "", error_id: int | None = None, field: str = "",
          reason: str = "") -> tuple[str, int]:
    ctx = web()
    held = intake_held.held_reports(ctx.db)
    if error_id not in {h.id for h in held}:    # decided meanwhile: the error goes at the top
        error_id = None
    return render("intake.html", status, title="Reports by mail", section="intake",
                  held=held, configured=bool(ctx.settings.submissions_mailbox),
                  error=error, error_id=error_id, error_field=field, reason=reason, reason_max=intake_held.REASON_MAX,
                  notice=NOTICES.get(request.args.get("done", ""), ""))


def _refused(exc: InputError, submission_id: int, field: str = "", reason: str = "") -> tuple[str, int]:
    if isinstance(exc, intake_held.NoSuchSubmission):
        return message("No such report", _sentence(exc), 404)
    status = 409 if isinstance(exc, intake_held.NotHeld) else 422
    return _page(status, error=_sentence(exc), error_id=submission_id, field=field, reason=reason)


@bp.get("/intake")
def intake_index():  # type: ignore[no-untyped-def]
    return _page()


@bp.post("/intake/<int:submission_id>/approve")
def intake_approve(submission_id: int):  # type: ignore[no-untyped-def]
    ctx = web()
    try:
        moved, _ = intake_held.approve(ctx.db, ctx.settings, submission_id, actor=g.desk_login.email)
    except InputError as exc:
        return _refused(exc, submission_id)
    audit.log(ctx.db, "intake_approve", actor=g.desk_login.email, target=f"submission {submission_id}",
              ip=client_ip(request), detail=", ".join(moved)[:1000])
    return redirect("/desk/intake?done=approved", 303)


@bp.post("/intake/<int:submission_id>/reject")
def intake_reject(submission_id: int):  # type: ignore[no-untyped-def]
    ctx = web()
    reason = request.form.get("reason", "")
    try:
        held = intake_held.reject(ctx.db, submission_id, reason, actor=g.desk_login.email)
    except InputError as exc:
        field = "reason" if not isinstance(exc, (intake_held.NoSuchSubmission, intake_held.NotHeld)) else ""
        return _refused(exc, submission_id, field, reason[:intake_held.REASON_MAX * 2])
    audit.log(ctx.db, "intake_reject", actor=g.desk_login.email, target=f"submission {submission_id}",
              ip=client_ip(request), detail=f"from {held.sender}: {held.title[:200]}; reason: {' '.join(reason.split())[:500]}")
    return redirect("/desk/intake?done=rejected", 303)
