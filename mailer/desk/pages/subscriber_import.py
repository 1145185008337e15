"""The desk's CSV import: upload (413 past its size), the column mapping and first rows, the import
with its counts, and the rejected rows as CSV (mailer.desk.imports)."""

from __future__ import annotations

from flask import Response, abort, g, request, send_file

from mailer.desk import audit, imports, sessions
from mailer.desk import people as desk_people
from mailer.desk.pages import bp, cookie_name, message, render
from mailer.errors import InputError
from mailer.web.guard import client_ip
from mailer.web.pages import web

SLACK = 64 * 1024           # the upload form's other fields
LIMIT = imports.UPLOAD_MAX + SLACK
TOO_LARGE = f"The file is over {imports.UPLOAD_MAX // (1024 * 1024)} MB: nothing was kept. Import a larger file with " \
            "`mailer subscribers import FILE --list SLUG`."


@bp.before_app_request
def _upload_limit() -> tuple[str, int] | None:
    """The upload may be larger than the app's 64 KB; past its own limit it gets 413 unread."""
    if request.endpoint != "desk.import_upload":
        return None
    request.max_content_length = LIMIT
    request.max_form_memory_size = LIMIT
    if (request.content_length or 0) > LIMIT and \
            sessions.current(web().db, request.cookies.get(cookie_name())) is not None:
        return message("Too large", TOO_LARGE, 413)
    return None


def _sentence(exc: Exception) -> str:
    text = str(exc)
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")


def _form(status: int = 200, error: str = "", field: str = "", values: dict | None = None):  # type: ignore[no-untyped-def,type-arg]
    return render("import.html", status, title="Import subscribers", section="subscribers",
                  lists=list(desk_people.list_names(web().db).items()), error=error, error_field=field,
                  values=values or {}, max_mb=imports.UPLOAD_MAX // (1024 * 1024))


@bp.get("/subscribers/import")
def import_form():  # type: ignore[no-untyped-def]
    return _form()


@bp.post("/subscribers/import")
def import_upload():  # type: ignore[no-untyped-def]
    ctx = web()
    values = {"list": request.form.get("list", "")[:64], "confirmed": request.form.get("confirmed") == "yes"}
    names = desk_people.list_names(ctx.db)
    if values["list"] not in names:
        return _form(422, "List: choose the list to import into.", "list", values)
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        return _form(422, "File: choose a CSV file to upload.", "file", values)
    try:
        kept = imports.save(ctx.settings, upload.stream, upload.filename, g.desk_login.csrf, values["list"],
                            values["confirmed"])
    except imports.UploadTooLarge:
        return message("Too large", TOO_LARGE, 413)
    try:
        preview = imports.preview(kept)
    except InputError as exc:
        imports.discard(kept)
        return _form(422, _sentence(exc), "file", values)
    return render("import_preview.html", title="Check the import", section="subscribers", upload=kept,
                  preview=preview, list_name=names[kept.list_slug])


@bp.post("/subscribers/import/<token>")
def import_run(token: str):  # type: ignore[no-untyped-def]
    ctx = web()
    try:
        upload = imports.load(ctx.settings, token, g.desk_login.csrf)
    except imports.NoSuchUpload as exc:
        return message("Nothing to import", _sentence(exc), 404)
    try:
        report = imports.run(ctx.db, ctx.settings, upload)
    except InputError as exc:
        return message("Nothing was imported", _sentence(exc), 422)
    audit.log(ctx.db, "subscriber_import", actor=g.desk_login.email, target=upload.list_slug, ip=client_ip(request),
              detail=f"file={upload.name} rows={report.rows} new={report.new_subscribers} "
                     f"subscribed={report.subscribed} rejected={report.rejected}"
                     + (" confirmed" if upload.confirmed else ""))
    return render("import_result.html", title="Import done", section="subscribers", upload=upload, report=report)


@bp.get("/subscribers/import/<token>/rejects.csv")
def import_rejects(token: str) -> Response:
    try:
        path = imports.rejects_file(web().settings, token, g.desk_login.csrf)
    except imports.NoSuchUpload:
        abort(404)
    response = send_file(path, mimetype="text/csv", as_attachment=True, download_name="rejected-rows.csv",
                         max_age=0)
    response.headers["Cache-Control"] = "no-store"
    return response
