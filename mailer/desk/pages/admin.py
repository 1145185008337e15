"""The admin's pages: accounts (add, role, disable/enable, reset, remove, require TOTP) and the audit log.

Every route calls `require_admin()` first: an editor gets 403. The rules (the last
active admin stays, links are shown once) live in mailer.desk.accounts, which the
CLI's `mailer users` calls too.
"""

from __future__ import annotations

from urllib.parse import urlencode

from flask import g, redirect, request

from mailer.desk import accounts, audit, totp
from mailer.desk.pages import bp, render, require_admin
from mailer.errors import InputError
from mailer.web.guard import client_ip
from mailer.web.pages import web

PER_PAGE = 50
DONE = {"role": "{email} is now {role}.", "disabled": "{email} is disabled: its sessions have ended.",
        "enabled": "{email} is enabled again.", "removed": "{email} is removed.",
        "required": "Two-step login is now required on every account.",
        "optional": "Two-step login is now each account's choice."}


def _status(exc: InputError) -> int:
    if isinstance(exc, accounts.NoAccount):
        return 404
    if isinstance(exc, (accounts.AccountExists, accounts.LastAdmin)):
        return 409
    return 422


def _accounts_page(status: int = 200, *, error: str = "", done: str = "", link: str = "", link_for: str = "",
                   email: str = "", role: str = "editor") -> tuple[str, int]:
    ctx = web()
    return render("accounts.html", status, title="Accounts", section="accounts", users=accounts.list_users(ctx.db),
                  roles=accounts.ROLES, required=totp.required(ctx.db), error=error, done=done, link=link,
                  link_for=link_for, email=email, role=role)


def _link(secret: str) -> str:
    return f"{web().settings.base_url.rstrip('/')}/desk/password/{secret}"


def _who() -> dict[str, str]:
    return {"actor": g.desk_login.email.casefold(), "ip": client_ip(request)}


def _message(exc: InputError) -> str:
    text = str(exc)
    return text[:1].upper() + text[1:] + "."


def _failed(exc: InputError) -> tuple[str, int]:
    return _accounts_page(_status(exc), error=_message(exc))


def _done(what: str, **values: str):  # type: ignore[no-untyped-def]
    return redirect("/desk/accounts?" + urlencode({"done": what, **values}), 303)


@bp.get("/accounts")
def accounts_list():  # type: ignore[no-untyped-def]
    require_admin()
    template = DONE.get(request.args.get("done", ""), "")
    values = {"email": request.args.get("email", "")[:320], "role": request.args.get("role", "")[:10]}
    return _accounts_page(done=template.format(**values) if template else "")


@bp.post("/accounts/add")
def accounts_add():  # type: ignore[no-untyped-def]
    require_admin()
    email, role = request.form.get("email", "").strip()[:320], request.form.get("role", "editor")[:10]
    try:
        secret = accounts.add_user(web().db, email, role, **_who())
    except InputError as exc:
        return _accounts_page(_status(exc), error=_message(exc), email=email, role=role)
    return _accounts_page(201, link=_link(secret), link_for=email)


@bp.post("/accounts/role")
def accounts_role():  # type: ignore[no-untyped-def]
    require_admin()
    email, role = request.form.get("email", "")[:320], request.form.get("role", "")[:10]
    try:
        accounts.set_role(web().db, email, role, **_who())
    except InputError as exc:
        return _failed(exc)
    return _done("role", email=email, role=role)


@bp.post("/accounts/disable")
def accounts_disable():  # type: ignore[no-untyped-def]
    require_admin()
    email = request.form.get("email", "")[:320]
    try:
        accounts.disable_user(web().db, email, **_who())
    except InputError as exc:
        return _failed(exc)
    return _done("disabled", email=email)


@bp.post("/accounts/enable")
def accounts_enable():  # type: ignore[no-untyped-def]
    require_admin()
    email = request.form.get("email", "")[:320]
    try:
        accounts.enable_user(web().db, email, **_who())
    except InputError as exc:
        return _failed(exc)
    return _done("enabled", email=email)


@bp.post("/accounts/reset")
def accounts_reset():  # type: ignore[no-untyped-def]
    require_admin()
    email = request.form.get("email", "")[:320]
    try:
        secret = accounts.reset_user(web().db, email, **_who())
    except InputError as exc:
        return _failed(exc)
    return _accounts_page(link=_link(secret), link_for=email)


@bp.get("/accounts/remove")
def accounts_remove_form():  # type: ignore[no-untyped-def]
    require_admin()
    try:
        account = accounts.find_account(web().db, request.args.get("email", "")[:320])
    except InputError as exc:
        return _failed(exc)
    return render("account_remove.html", title="Remove an account", section="accounts", account=account)


@bp.post("/accounts/remove")
def accounts_remove():  # type: ignore[no-untyped-def]
    require_admin()
    email = request.form.get("email", "")[:320]
    try:
        accounts.remove_user(web().db, email, **_who())
    except InputError as exc:
        return _failed(exc)
    return _done("removed", email=email)


@bp.post("/accounts/totp")
def accounts_totp():  # type: ignore[no-untyped-def]
    require_admin()
    on = request.form.get("require") == "on"
    totp.set_required(web().db, on, **_who())
    return _done("required" if on else "optional")


@bp.get("/audit")
def audit_log():  # type: ignore[no-untyped-def]
    require_admin()
    ctx = web()
    actor, action = request.args.get("actor", "")[:320].strip(), request.args.get("action", "")[:40]
    try:
        page = max(1, min(int(request.args.get("page", "1")), 1_000_000))
    except ValueError:
        page = 1
    rows, total = audit.entries(ctx.db, actor=actor, action=action, page=page, per_page=PER_PAGE)
    pages = max(1, -(-total // PER_PAGE))

    def page_url(number: int) -> str:
        query = {k: v for k, v in (("actor", actor), ("action", action)) if v}
        return "/desk/audit?" + urlencode({**query, "page": number})

    return render("audit.html", title="Audit log", section="audit", rows=rows, total=total, page=page,
                  pages=pages, actor=actor, action=action, actions=audit.actions(ctx.db),
                  previous=page_url(page - 1) if page > 1 else "",
                  next=page_url(page + 1) if page < pages else "")
