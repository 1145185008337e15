"""The desk's routes for an issue's images (upload, the file itself, removal) and its preview (a page,
and the frames the issue page shows)."""

from __future__ import annotations

from pathlib import Path

from flask import Response, abort, g, redirect, request, send_file

from mailer.desk import audit, issuefiles, issueimages
from mailer.desk import issues as desk_issues
from mailer.desk.issuepreview import VARIANTS, PreviewError, current_version, issue_preview, preview_state
from mailer.desk.pages import bp, message, render
from mailer.desk.pages.issues import actor, refused, sentence
from mailer.errors import InputError
from mailer.web.pages import web

# a frame's own CSP: no script (default-src 'none'), mail HTML's inline styles; the <iframe> element on
# the issue page adds the sandbox itself (a `sandbox` directive here would also stop the a11y crawl's axe)
FRAME_CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src 'self' https: data:; "
             "form-action 'none'; base-uri 'none'")


@bp.post("/issues/<slug>/images")
def image_upload(slug: str):  # type: ignore[no-untyped-def]
    ctx = web()
    upload = request.files.get("image")
    try:
        folder = desk_issues.editable_folder(ctx.settings, ctx.db, slug)
        if upload is None or not upload.filename:
            raise desk_issues.IssueFieldError("image", "image: choose a JPEG, PNG, GIF or WebP file")
        data = upload.stream.read(issueimages.MAX_BYTES + 1)
        name = issueimages.add_image(folder, upload.filename, data)
    except InputError as exc:
        return refused(slug, exc, "image")
    audit.log(ctx.db, "image_add", target=f"{slug}/images/{name}", **actor())
    return redirect(f"/desk/issues/{slug}?done=image#images", 303)


@bp.get("/issues/<slug>/images/<name>")
def image_file(slug: str, name: str):  # type: ignore[no-untyped-def]
    try:
        path = issueimages.image_path(desk_issues.issue_folder(web().settings, slug), name)
    except InputError:
        abort(404)
    response = send_file(path, mimetype=issueimages.image_type(name), max_age=0)
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response


@bp.get("/issues/<slug>/images/<name>/remove")
def image_remove_form(slug: str, name: str):  # type: ignore[no-untyped-def]
    try:
        issueimages.image_path(desk_issues.issue_folder(web().settings, slug), name)
    except desk_issues.NoSuchIssue as exc:
        return message("No such issue", sentence(exc), 404)
    except InputError as exc:
        return message("No such image", sentence(exc), 404)
    return render("issue_remove.html", title=f"Remove {name}?", section="issues", slug=slug, what="image",
                  label=name, name=name)


@bp.post("/issues/<slug>/images/<name>/remove")
def image_remove(slug: str, name: str):  # type: ignore[no-untyped-def]
    ctx = web()
    try:
        folder = desk_issues.editable_folder(ctx.settings, ctx.db, slug)
        issueimages.remove_image(folder, name)
    except InputError as exc:
        if isinstance(exc, issuefiles.NoSuchFile):
            return message("No such image", sentence(exc), 404)
        return refused(slug, exc, "image")
    audit.log(ctx.db, "image_remove", target=f"{slug}/images/{name}", **actor())
    return redirect(f"/desk/issues/{slug}?done=image_removed#images", 303)


@bp.get("/issues/<slug>/preview.json")
def issue_preview_state(slug: str):  # type: ignore[no-untyped-def]
    """Polled by /desk/js/preview.js: the frames reload when the version changes."""
    ctx = web()
    try:
        folder = desk_issues.issue_folder(ctx.settings, slug)
    except desk_issues.NoSuchIssue:
        return {"error": "no such issue"}, 404
    return preview_state(ctx.settings, folder)


@bp.get("/issues/<slug>/preview")
def issue_preview_page(slug: str):  # type: ignore[no-untyped-def]
    ctx = web()
    try:
        folder = desk_issues.issue_folder(ctx.settings, slug)
        preview = issue_preview(ctx.settings, folder)
    except desk_issues.NoSuchIssue as exc:
        return message("No such issue", sentence(exc), 404)
    except PreviewError as exc:
        return render("issue_preview.html", 422, title=f"Preview of {slug}", section="issues", slug=slug,
                      preview=None, compose_error=str(exc), version=current_version(ctx.settings, folder))
    return render("issue_preview.html", title=f"Preview of {slug}", section="issues", slug=slug, preview=preview,
                  compose_error="", version=preview.version)


@bp.get("/issues/<slug>/preview/<variant>")
def issue_preview_frame(slug: str, variant: str):  # type: ignore[no-untyped-def]
    try:
        folder = desk_issues.issue_folder(web().settings, slug)
    except desk_issues.NoSuchIssue:
        abort(404)
    return preview_frame(folder, variant)


def preview_frame(folder: Path, variant: str, *, online: bool = True) -> Response:
    """One preview frame of the issue in *folder* (a VARIANTS name, else 404), framed by desk pages only;
    *online* as issuepreview.issue_preview."""
    if variant not in VARIANTS:
        abort(404)
    try:
        preview = issue_preview(web().settings, folder, online=online)
    except PreviewError as exc:
        return frame(None, variant, f"This issue does not compose: {exc}")
    return frame(preview.parts, variant)


def frame(parts: dict[str, str] | None, variant: str, error: str = "") -> Response:
    """A preview frame's response: *parts*' *variant* (404 when there is none), or *error* with 422."""
    if parts is None:
        response = Response(error + "\n", 422, mimetype="text/plain")
    elif variant not in parts:
        abort(404)
    else:
        response = Response(parts[variant], mimetype="text/plain" if variant.endswith("text") else "text/html")
    g.frame_origins = ("'self'",)          # framed by desk pages only
    response.headers["Content-Security-Policy"] = FRAME_CSP
    return response
