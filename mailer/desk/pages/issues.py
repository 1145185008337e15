"""The desk's issue pages: the issue list, a new issue, one issue's page (fields, reports, images,
compose check and preview frames) and its reports. Images and the preview frames: pages.issuemedia."""

from __future__ import annotations

from flask import Response, g, redirect, request

from mailer.desk import audit, issuefiles, issueimages, sessions
from mailer.desk import issues as desk_issues
from mailer.desk.issuepreview import PreviewError, current_version, issue_preview
from mailer.desk.pages import bp, cookie_name, message, render
from mailer.errors import InputError
from mailer.web.guard import client_ip
from mailer.web.pages import web

NOTICES = {"created": "The issue was created. Add its reports below.", "saved": "Your changes were saved.",
           "report": "The report was added.",
           "report_pictures": "The report was added. Some of its pictures were left out: only JPEG, PNG, GIF and WebP "
                              "pictures up to 5 MB are kept; upload the others as images.", "edited": "The report was saved.", "moved": "The order was changed.", "removed": "The report was removed.",
           "image": "The image was added.", "image_removed": "The image was removed."}
FIELDS = ("subject", "preheader", "intro")
SLACK = 256 * 1024        # the form's other fields around an upload
# endpoint -> (largest body, what the message names)
LIMITS = {
    "desk.report_paste": (4 * issuefiles.PASTE_MAX + SLACK, "text: at most 2,000,000 characters"),
    "desk.report_edit": (4 * issuefiles.PASTE_MAX + SLACK, "text: at most 2,000,000 characters"),
    "desk.digest_paste": (4 * issuefiles.PASTE_MAX + SLACK, "text: at most 2,000,000 characters"),
    "desk.digest_upload": (issuefiles.REPORT_UPLOAD_MAX + SLACK, "file: at most 10 MB"),
    "desk.report_upload": (issuefiles.REPORT_UPLOAD_MAX + SLACK, "file: at most 10 MB"),
    "desk.image_upload": (issueimages.MAX_BYTES + SLACK, "image: at most 5 MB (aim for 200 KB)"),
}



@bp.before_app_request
def _upload_limits() -> Response | tuple[str, int] | None:
    """Uploads may be larger than the app's 64 KB; past their own limit they get 413 unread."""
    limit = LIMITS.get(request.endpoint or "")
    if limit is None:
        return None
    request.max_content_length = limit[0]
    request.max_form_memory_size = limit[0]
    if (request.content_length or 0) > limit[0] and \
            sessions.current(web().db, request.cookies.get(cookie_name())) is not None:
        return message("Too large", f"Nothing was saved. The {limit[1]}.", 413)
    return None


def sentence(exc: Exception) -> str:
    text = str(exc)
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")


def _status_of(exc: InputError) -> int:
    if isinstance(exc, (desk_issues.NoSuchIssue, issuefiles.NoSuchFile)):
        return 404
    if isinstance(exc, (desk_issues.IssueLocked, desk_issues.IssueExists, issuefiles.FileExists)):
        return 409
    return 422


def actor() -> dict[str, str]:
    return {"actor": g.desk_login.email, "ip": client_ip(request)}


def _index(status: int = 200, error: str = "", field: str = "", values: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    ctx = web()
    return render("index.html", status, title="Issues", section="issues",
                  issues=desk_issues.list_issues(ctx.settings, ctx.db), error=error, error_field=field,
                  values=values or {})


@bp.get("/")
def index():  # type: ignore[no-untyped-def]
    return _index()


@bp.post("/issues")
def issue_create():  # type: ignore[no-untyped-def]
    ctx = web()
    values = {k: request.form.get(k, "")[:500] for k in ("slug", "date", "subject")}
    try:
        desk_issues.create_issue(ctx.settings, values["slug"], values["date"], values["subject"])
    except desk_issues.IssueFieldError as exc:
        return _index(422, sentence(exc), exc.field, values)
    except desk_issues.IssueExists as exc:
        return _index(409, sentence(exc), "slug", values)
    slug = values["slug"].strip()
    audit.log(ctx.db, "issue_create", target=slug, detail=f"subject={values['subject'].strip()[:200]}", **actor())
    return redirect(f"/desk/issues/{slug}?done=created", 303)


def issue_page(slug: str, status: int = 200, *, error: str = "", field: str = "", form: str = "",
               values: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    """The issue's page; *error* shows above the form *form* ('fields', 'paste', 'upload', 'image')."""
    ctx = web()
    try:
        issue = desk_issues.issue_detail(ctx.settings, ctx.db, slug)
    except desk_issues.NoSuchIssue as exc:
        return message("No such issue", sentence(exc), 404)
    spec = issue.spec
    if values is None:
        values = {"subject": spec.subject, "preheader": spec.preheader, "intro": spec.intro} if spec else {}
    chosen = set(request.form.getlist("lists")) if form == "fields" else set(spec.lists if spec else ())
    reports = issuefiles.report_rows(issue.folder, ctx.settings.language) if spec else []
    unlisted = issuefiles.unlisted_reports(issue.folder) if spec else []
    preview, compose_error, version = None, "", ""
    if spec:
        try:
            preview = issue_preview(ctx.settings, issue.folder)
            version = preview.version
        except PreviewError as exc:
            compose_error, version = str(exc), current_version(ctx.settings, issue.folder)
    return render("issue.html", status, title=f"Issue {slug}", section="issues", issue=issue, spec=spec,
                  reports=reports, unlisted=unlisted, images=issueimages.image_names(issue.folder), lists=desk_issues.list_choices(ctx.db),
                  chosen=chosen, values=values, error=error, error_field=field, form=form,
                  preview=preview, compose_error=compose_error, version=version, notice=NOTICES.get(request.args.get("done", "")))


def refused(slug: str, exc: InputError, form: str, values: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    if isinstance(exc, desk_issues.NoSuchIssue):
        return message("No such issue", sentence(exc), 404)
    field = getattr(exc, "field", "")
    return issue_page(slug, _status_of(exc), error=sentence(exc), field=field, form=form, values=values)


@bp.get("/issues/<slug>")
def issue_show(slug: str):  # type: ignore[no-untyped-def]
    return issue_page(slug)


@bp.post("/issues/<slug>")
def issue_edit(slug: str):  # type: ignore[no-untyped-def]
    ctx = web()
    values = {k: request.form.get(k, "")[:desk_issues.INTRO_MAX + 1] for k in FIELDS}
    known = {slug for slug, _ in desk_issues.list_choices(ctx.db)}
    try:
        desk_issues.edit_issue(ctx.settings, ctx.db, slug, values["subject"], values["preheader"], values["intro"],
                               request.form.getlist("lists"), known)
    except InputError as exc:
        return refused(slug, exc, "fields", values)
    audit.log(ctx.db, "issue_edit", target=slug, detail=f"subject={values['subject'].strip()[:200]} "
              f"lists={','.join(sorted(set(request.form.getlist('lists'))))}", **actor())
    return redirect(f"/desk/issues/{slug}?done=saved", 303)


@bp.post("/issues/<slug>/reports/paste")
def report_paste(slug: str):  # type: ignore[no-untyped-def]
    ctx = web()
    title = request.form.get("title", "")[:500]
    try:
        folder = desk_issues.editable_folder(ctx.settings, ctx.db, slug)
        name = issuefiles.add_pasted(folder, title, request.form.get("text", ""), request.form.get("html", ""),
                                     ctx.settings.language)
    except InputError as exc:
        return refused(slug, exc, "paste", {"title": title, "text": request.form.get("text", "")})
    audit.log(ctx.db, "report_add", target=f"{slug}/{name}", detail="pasted", **actor())
    return redirect(f"/desk/issues/{slug}?done=report#reports", 303)


@bp.post("/issues/<slug>/reports/upload")
def report_upload(slug: str):  # type: ignore[no-untyped-def]
    ctx = web()
    title = request.form.get("title", "")[:500]
    upload = request.files.get("file")
    try:
        folder = desk_issues.editable_folder(ctx.settings, ctx.db, slug)
        if upload is None or not upload.filename:
            raise desk_issues.IssueFieldError("file", "file: choose a .md, .txt or .docx file")
        data = upload.stream.read(issuefiles.REPORT_UPLOAD_MAX + 1)
        name, left_out = issuefiles.add_uploaded(folder, title, upload.filename, data, ctx.settings.language)
    except InputError as exc:
        return refused(slug, exc, "upload", {"upload_title": title})
    audit.log(ctx.db, "report_add", target=f"{slug}/{name}", detail=f"uploaded {upload.filename[:200]}", **actor())
    return redirect(f"/desk/issues/{slug}?done={'report_pictures' if left_out else 'report'}#reports", 303)


@bp.post("/issues/<slug>/reports/include")
def report_include(slug: str):  # type: ignore[no-untyped-def]
    ctx = web()
    try:
        names = issuefiles.include_reports(desk_issues.editable_folder(ctx.settings, ctx.db, slug))
    except InputError as exc:
        return refused(slug, exc, "reports")
    if names:
        audit.log(ctx.db, "report_add", target=f"{slug}/{names[0]}", detail=f"included {', '.join(names)[:300]}",
                  **actor())
    return redirect(f"/desk/issues/{slug}?done=report#reports", 303)


@bp.post("/issues/<slug>/reports/<name>/move")
def report_move(slug: str, name: str):  # type: ignore[no-untyped-def]
    ctx = web()
    step = {"up": -1, "down": 1}.get(request.form.get("direction", ""))
    try:
        folder = desk_issues.editable_folder(ctx.settings, ctx.db, slug)
        if step is None:
            raise desk_issues.IssueFieldError("direction", "direction: up or down")
        issuefiles.move_report(folder, name, step)
    except InputError as exc:
        return refused(slug, exc, "reports")
    audit.log(ctx.db, "report_move", target=f"{slug}/{name}", detail=request.form.get("direction", ""), **actor())
    return redirect(f"/desk/issues/{slug}?done=moved#reports", 303)


@bp.get("/issues/<slug>/reports/<name>/remove")
def report_remove_form(slug: str, name: str):  # type: ignore[no-untyped-def]
    ctx = web()
    try:
        folder = desk_issues.issue_folder(ctx.settings, slug)
        row = next((r for r in issuefiles.report_rows(folder, ctx.settings.language) if r.name == name), None)
    except InputError as exc:
        return message("No such issue", sentence(exc), 404)
    if row is None:
        return message("No such report", f"There is no report {name[:80]!r} in this issue.", 404)
    return render("issue_remove.html", title=f"Remove {name}?", section="issues", slug=slug, what="report",
                  label=row.title or row.name, name=row.name)


@bp.post("/issues/<slug>/reports/<name>/remove")
def report_remove(slug: str, name: str):  # type: ignore[no-untyped-def]
    ctx = web()
    try:
        folder = desk_issues.editable_folder(ctx.settings, ctx.db, slug)
        issuefiles.remove_report(folder, name)
    except InputError as exc:
        if isinstance(exc, issuefiles.NoSuchFile):
            return message("No such report", sentence(exc), 404)
        return refused(slug, exc, "reports")
    audit.log(ctx.db, "report_remove", target=f"{slug}/{name}", **actor())
    return redirect(f"/desk/issues/{slug}?done=removed#reports", 303)
