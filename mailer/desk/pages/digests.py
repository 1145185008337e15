"""The desk's digest pages: every digest folder, and one digest's page (its inbox, the reports set
aside, the next digest's preview and frames, adding or removing an inbox report, planning it)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from flask import redirect, request

from mailer.desk import audit, digests, issuefiles
from mailer.desk import sending as desk_sending
from mailer.desk.pages import bp, message, render
from mailer.desk.pages.issuemedia import frame
from mailer.desk.pages.issues import actor, sentence
from mailer.desk.pages.sending import audience_form
from mailer.errors import InputError, MailerError
from mailer.web.pages import web

NOTICES = {"added": "The report is in the inbox: the next digest takes it.",
           "removed": "The report was taken out of the inbox and deleted.",
           "scheduled": "The digest is planned: see its schedule below."}


def _digest(name: str) -> digests.Digest | None:
    ctx = web()
    try:
        return digests.find(ctx.settings, ctx.db, name)
    except digests.NoSuchDigest:
        return None


def _missing(name: str) -> tuple[str, int]:
    return message("No such digest", f"There is no digest folder {name[:80]!r}.", 404)


@bp.get("/digests")
def digests_index():  # type: ignore[no-untyped-def]
    ctx = web()
    return render("digests.html", title="Digests", section="digests", digests=digests.digests(ctx.settings, ctx.db),
                  issues_dir=ctx.settings.issues_dir)


def _page(digest: digests.Digest, status: int = 200, *, error: str = "", action: str = "",
          values: Any = None) -> tuple[str, int]:
    ctx = web()
    compose_error, upcoming = "", None
    try:
        upcoming = digests.next_digest(ctx.settings, ctx.db, digest)
    except MailerError as exc:
        compose_error = sentence(exc)
    spec_lists = upcoming.preview.composed.lists if upcoming and upcoming.preview.composed else ()
    return render("digest.html", status, title=f"Digest {digest.name}", section="digests", d=digest,
                  inbox=digests.inbox(digest.folder, ctx.settings.language), rejected=digests.set_aside(digest.folder),
                  upcoming=upcoming, compose_error=compose_error, error=error, action=action,
                  values=values or {}, presets=digests.PRESETS, zone=ctx.settings.schedule_timezone,
                  choices=desk_sending.list_choices(ctx.db, spec_lists, request.form.getlist("list") if error else ()),
                  all_lists=desk_sending.list_choices(ctx.db, (), ()), segments=desk_sending.segment_names(ctx.db),
                  who=audience_form() if error else desk_sending.AudienceForm(),
                  notice=NOTICES.get(request.args.get("done", ""), ""))


@bp.get("/digests/<name>")
def digest_page(name: str):  # type: ignore[no-untyped-def]
    digest = _digest(name)
    return _missing(name) if digest is None else _page(digest)


@bp.get("/digests/<name>/preview/<variant>")
def digest_preview_frame(name: str, variant: str):  # type: ignore[no-untyped-def]
    ctx, digest = web(), _digest(name)
    if digest is None:
        return _missing(name)
    try:
        upcoming = digests.next_digest(ctx.settings, ctx.db, digest)
    except MailerError as exc:
        return frame(None, variant, f"The digest does not compose: {exc}")
    if not upcoming.parts:
        return frame(None, variant, "The inbox holds no report that composes: there is nothing to preview.")
    return frame(upcoming.parts, variant)


def _added(digest: digests.Digest, new_report: Any, field: str) -> Any:
    ctx = web()
    file_name = digests.add_report(digest.folder, new_report, ctx.settings.language, field)
    audit.log(ctx.db, "digest_report_add", target=f"{digest.name}/inbox/{file_name}", **actor())
    return redirect(f"/desk/digests/{quote(digest.name)}?done=added#inbox", 303)


@bp.post("/digests/<name>/inbox/paste")
def digest_paste(name: str):  # type: ignore[no-untyped-def]
    digest = _digest(name)
    if digest is None:
        return _missing(name)
    form = request.form
    try:
        return _added(digest, issuefiles.pasted_report(form.get("title", "")[:500], form.get("text", ""),
                                                       form.get("html", "")), "text")
    except InputError as exc:
        return _page(digest, 422, error=sentence(exc), action="paste", values=form)


@bp.post("/digests/<name>/inbox/upload")
def digest_upload(name: str):  # type: ignore[no-untyped-def]
    digest = _digest(name)
    if digest is None:
        return _missing(name)
    upload = request.files.get("file")
    try:
        if upload is None or not upload.filename:
            raise InputError("file: choose a .md, .txt or .docx file")
        data = upload.stream.read(issuefiles.REPORT_UPLOAD_MAX + 1)
        return _added(digest, issuefiles.uploaded_report(request.form.get("title", "")[:500], upload.filename, data),
                      "file")
    except InputError as exc:
        return _page(digest, 422, error=sentence(exc), action="upload", values=request.form)


@bp.get("/digests/<name>/inbox/<file>/remove")
def digest_remove_form(name: str, file: str):  # type: ignore[no-untyped-def]
    digest = _digest(name)
    if digest is None:
        return _missing(name)
    row = next((r for r in digests.inbox(digest.folder, web().settings.language) if r.name == file), None)
    if row is None:
        return message("No such report", f"There is no report {file[:80]!r} in the inbox.", 404)
    return render("digest_remove.html", title=f"Remove {file}?", section="digests", d=digest, row=row)


@bp.post("/digests/<name>/inbox/<file>/remove")
def digest_remove(name: str, file: str):  # type: ignore[no-untyped-def]
    ctx, digest = web(), _digest(name)
    if digest is None:
        return _missing(name)
    try:
        digests.remove_report(digest.folder, file)
    except issuefiles.NoSuchFile as exc:
        return message("No such report", sentence(exc), 404)
    audit.log(ctx.db, "digest_report_remove", target=f"{digest.name}/inbox/{file}", **actor())
    return redirect(f"/desk/digests/{quote(digest.name)}?done=removed#inbox", 303)


@bp.post("/digests/<name>/schedule")
def digest_schedule(name: str):  # type: ignore[no-untyped-def]
    ctx, digest = web(), _digest(name)
    if digest is None:
        return _missing(name)
    form = request.form
    cron = form.get("cron_other", "").strip()[:200] if form.get("cron") == "other" else form.get("cron", "")[:200]
    lists = [s.strip()[:100] for s in form.getlist("list")[:50] if s.strip()]
    try:
        audience = audience_form().resolved(ctx.db)
        schedule_id = digests.schedule(ctx.db, ctx.settings, digest, lists, cron, form.get("tz", "")[:100],
                                       form.get("min_reports", "")[:20], audience)
    except InputError as exc:
        return _page(digest, 422, error=sentence(exc), action="schedule", values=form)
    audit.log(ctx.db, "digest_schedule", target=f"digest {digest.name}",
              detail=f"schedule {schedule_id} cron={cron!r} lists={','.join(lists) or '(issue.toml)'}"[:1000], **actor())
    return redirect(f"/desk/digests/{quote(digest.name)}?done=scheduled#schedules", 303)
