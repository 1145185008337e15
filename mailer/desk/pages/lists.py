"""The desk's list pages: every list with its counts, a new list, one list's settings, its welcome
mail (choose it, its preview) and its embeddable sign-up form."""

from __future__ import annotations

from typing import Any

from flask import abort, g, redirect, request

from mailer.desk import audit
from mailer.desk import lists as desk_lists
from mailer.desk.issuepreview import PreviewError, issue_preview
from mailer.desk.issues import issue_folders
from mailer.desk.pages import bp, render
from mailer.desk.pages.issuemedia import preview_frame
from mailer.errors import InputError
from mailer.models import OptIn
from mailer.web.guard import client_ip
from mailer.web.pages import web

NOTICES = {"created": "The list was created.", "saved": "Your changes were saved.",
           "welcome": "The welcome mail was saved.", "nowelcome": "This list sends no welcome mail any more."}
FIELDS = ("slug", "name", "description", "opt_in")


def _form_values() -> dict[str, str]:
    return {field: request.form.get(field, "")[:2000] for field in FIELDS}


def _lists_page(status: int = 200, error: str = "", field: str = "",
                values: dict[str, str] | None = None) -> tuple[str, int]:
    return render("lists.html", status, title="Lists", section="lists", lists=desk_lists.summaries(web().db),
                  statuses=desk_lists.STATUSES, opt_ins=desk_lists.OPT_INS, error=error, error_field=field,
                  values=values or {"opt_in": OptIn.DOUBLE.value}, notice=NOTICES.get(request.args.get("done", "")))


def _welcome_context(slug: str, error: str = "", chosen: str | None = None) -> dict[str, Any]:
    """The list page's welcome section: the welcome issue, its compose check, the desk's issues to choose."""
    ctx = web()
    welcome = desk_lists.welcome_of(ctx.db, ctx.settings, slug)
    preview, compose_error = None, ""
    if welcome.folder is not None:
        try:
            preview = issue_preview(ctx.settings, welcome.folder, online=False)   # as welcome_message composes it
        except PreviewError as exc:
            compose_error = str(exc)
    return {"welcome": welcome, "welcome_preview": preview, "welcome_compose_error": compose_error,
            "welcome_error": error, "welcome_choices": [p.name for p in issue_folders(ctx.settings)],
            "welcome_chosen": welcome.desk_slug if chosen is None else chosen}


def _list_page(slug: str, status: int = 200, error: str = "", field: str = "",
               values: dict[str, str] | None = None, welcome_error: str = "",
               welcome_chosen: str | None = None) -> tuple[str, int]:
    ctx = web()
    summary = desk_lists.find_summary(ctx.db, slug)
    if summary is None:
        abort(404)
    if values is None:
        values = {"name": summary.name, "description": summary.description, "opt_in": summary.opt_in.value}
    return render("list.html", status, title=f"List {summary.name}", section="lists", mlist=summary,
                  **_welcome_context(slug, welcome_error, welcome_chosen),
                  statuses=desk_lists.STATUSES, opt_ins=desk_lists.OPT_INS, error=error, error_field=field,
                  values=values, snippet=desk_lists.embed_snippet(ctx.settings, summary.slug, summary.name),
                  embed_origins=ctx.settings.web_embed_origins,
                  notice=NOTICES.get(request.args.get("done", "")))


def _sentence(exc: Exception) -> str:
    text = str(exc)
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")


@bp.get("/lists")
def lists_index():  # type: ignore[no-untyped-def]
    return _lists_page()


@bp.post("/lists")
def lists_create():  # type: ignore[no-untyped-def]
    ctx, values = web(), _form_values()
    try:
        desk_lists.create(ctx.db, values["slug"], values["name"], values["opt_in"], values["description"])
    except desk_lists.ListFieldError as exc:
        return _lists_page(422, _sentence(exc), exc.field, values)
    except desk_lists.ListExists as exc:
        return _lists_page(409, _sentence(exc), "slug", values)
    slug = values["slug"].strip()
    audit.log(ctx.db, "list_add", actor=g.desk_login.email, target=slug, ip=client_ip(request),
              detail=f"name={values['name'].strip()[:200]} opt_in={values['opt_in']}")
    return redirect(f"/desk/lists/{slug}?done=created", 303)


@bp.get("/lists/<slug>")
def list_page(slug: str):  # type: ignore[no-untyped-def]
    return _list_page(slug)


@bp.post("/lists/<slug>")
def list_edit(slug: str):  # type: ignore[no-untyped-def]
    ctx, values = web(), _form_values()
    if desk_lists.find_summary(ctx.db, slug) is None:
        abort(404)
    try:
        desk_lists.edit(ctx.db, slug, values["name"], values["opt_in"], values["description"])
    except desk_lists.ListFieldError as exc:
        return _list_page(slug, 422, _sentence(exc), exc.field, values)
    except InputError as exc:   # the list went away meanwhile
        return _list_page(slug, 404, _sentence(exc), "", values)
    audit.log(ctx.db, "list_edit", actor=g.desk_login.email, target=slug, ip=client_ip(request),
              detail=f"name={values['name'].strip()[:200]} opt_in={values['opt_in']}")
    return redirect(f"/desk/lists/{slug}?done=saved", 303)


@bp.post("/lists/<slug>/welcome")
def list_welcome(slug: str):  # type: ignore[no-untyped-def]
    """`mailer lists welcome`: one of the desk's issues becomes the list's welcome mail, or none."""
    ctx = web()
    chosen = request.form.get("issue", "").strip()[:200]
    if desk_lists.find_summary(ctx.db, slug) is None:
        abort(404)
    try:
        subject = desk_lists.set_welcome(ctx.db, ctx.settings, slug, chosen)
    except desk_lists.WelcomeError as exc:
        return _list_page(slug, 422, welcome_error=_sentence(exc), welcome_chosen=chosen)
    except InputError as exc:   # the list went away meanwhile
        return _list_page(slug, 404, welcome_error=_sentence(exc), welcome_chosen=chosen)
    audit.log(ctx.db, "list_welcome", actor=g.desk_login.email, target=slug, ip=client_ip(request),
              detail=f"issue={chosen} subject={subject[:200]}" if subject else "off")
    return redirect(f"/desk/lists/{slug}?done={'welcome' if subject else 'nowelcome'}#welcome", 303)


@bp.get("/lists/<slug>/welcome/<variant>")
def list_welcome_frame(slug: str, variant: str):  # type: ignore[no-untyped-def]
    """A preview frame of the list's welcome mail (404 when it has none, or it is not on disk)."""
    ctx = web()
    try:
        welcome = desk_lists.welcome_of(ctx.db, ctx.settings, slug)
    except InputError:
        abort(404)
    if welcome.folder is None:
        abort(404)
    return preview_frame(welcome.folder, variant, online=False)
