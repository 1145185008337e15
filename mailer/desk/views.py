"""The desk's web pages (a blueprint at /desk/): login, set-password link, the issue list, logout.

HTTP only: parse, call mailer.desk's modules, render; no SQL here. Every route
but the login form and the set-password link needs a session; every state
change is a POST carrying a CSRF token (the login and link forms the signed,
session-less form token of the public pages; logged-in forms the session's own),
from our own origin. The cookie is HttpOnly, SameSite=Strict, scoped to /desk
and Secure when base_url is https. Its name takes the `__Secure-` prefix there,
not `__Host-`, which browsers accept only with Path=/ and would send the desk's
cookie to every public page.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, abort, g, redirect, render_template, request

from mailer.desk import accounts, sessions
from mailer.desk.issues import list_issues
from mailer.errors import InputError
from mailer.web.guard import FORM_TOKEN_FIELD, client_ip, origin_allowed, own_origins
from mailer.web.pages import web

bp = Blueprint("desk", __name__, url_prefix="/desk")
PUBLIC_ENDPOINTS = {"desk.login_form", "desk.login_submit", "desk.password_form", "desk.password_submit"}


def cookie_name_for(base_url: str) -> str:
    """The session cookie's name: with the `__Secure-` prefix when base_url is https."""
    return "__Secure-mailer-desk" if base_url.lower().startswith("https://") else "mailer-desk"


def cookie_name() -> str:
    return cookie_name_for(web().settings.base_url)


def _secure() -> bool:
    return web().settings.base_url.lower().startswith("https://")


def _render(template: str, status: int = 200, **context: Any) -> tuple[str, int]:
    settings = web().settings
    html = render_template(f"desk/{template}", group_name=settings.group_name, lang=settings.language,
                           dir=settings.text_direction, login=g.get("desk_login"), **context)
    return html, status


def _message(title: str, message: str, status: int) -> tuple[str, int]:
    return _render("message.html", status, title=title, message=message)


def _with_session(response: Response, raw: str) -> Response:
    response.set_cookie(cookie_name(), raw, max_age=int(sessions.ABSOLUTE.total_seconds()), path="/desk",
                        secure=_secure(), httponly=True, samesite="Strict")
    return response


def _checked_post() -> None:
    """400 for a POST from another origin or without a valid form token (pre-login forms)."""
    ctx = web()
    if not origin_allowed(request, own_origins(ctx.settings, request)):
        abort(400)
    if not ctx.forms.valid(request.form.get(FORM_TOKEN_FIELD)):
        abort(400)


@bp.before_request
def _load_login() -> Response | None:
    g.desk_login = sessions.current(web().db, request.cookies.get(cookie_name()))
    if g.desk_login is None and request.endpoint not in PUBLIC_ENDPOINTS:
        return redirect("/desk/login", 303)
    if request.method == "POST" and g.desk_login is not None and request.endpoint not in PUBLIC_ENDPOINTS:
        if not origin_allowed(request, own_origins(web().settings, request)):
            abort(400)
        if not sessions.csrf_valid(g.desk_login, request.form.get(FORM_TOKEN_FIELD)):
            abort(400)
    return None


def _login_page(status: int = 200, error: str = "", email: str = "") -> tuple[str, int]:
    return _render("login.html", status, title="Log in", error=error, email=email,
                   csrf_token=web().forms.mint())


@bp.get("/login")
def login_form():  # type: ignore[no-untyped-def]
    if g.desk_login is not None:
        return redirect("/desk/", 303)
    return _login_page()


@bp.post("/login")
def login_submit():  # type: ignore[no-untyped-def]
    _checked_post()
    email = request.form.get("email", "")[:320]
    try:
        raw = sessions.login(web().db, email, request.form.get("password", "")[:accounts.MAX_PASSWORD],
                             client_ip(request))
    except sessions.LoginLocked as exc:
        return _login_page(429, str(exc), email)
    except sessions.LoginFailed as exc:
        return _login_page(401, str(exc), email)
    old = request.cookies.get(cookie_name())
    if old:
        sessions.logout(web().db, old, client_ip(request))
    return _with_session(redirect("/desk/", 303), raw)


def _password_page(account: accounts.Account, status: int = 200, error: str = "") -> tuple[str, int]:
    return _render("password.html", status, title="Choose your password", account=account, error=error,
                   min_length=accounts.MIN_PASSWORD, csrf_token=web().forms.mint())


@bp.get("/password/<secret>")
def password_form(secret: str):  # type: ignore[no-untyped-def]
    try:
        account = accounts.link_account(web().db, secret)
    except accounts.LinkError as exc:
        return _message("Link not valid", str(exc)[:1].upper() + str(exc)[1:] + ".", 410)
    return _password_page(account)


@bp.post("/password/<secret>")
def password_submit(secret: str):  # type: ignore[no-untyped-def]
    _checked_post()
    ctx = web()
    password, again = request.form.get("password", ""), request.form.get("password_again", "")
    try:
        account = accounts.link_account(ctx.db, secret)
        if password != again:
            return _password_page(account, 400, "The two passwords differ.")
        raw = sessions.set_password_and_login(ctx.db, secret, password, client_ip(request))
    except accounts.LinkError as exc:
        return _message("Link not valid", str(exc)[:1].upper() + str(exc)[1:] + ".", 410)
    except InputError as exc:
        return _password_page(account, 400, str(exc)[:1].upper() + str(exc)[1:] + ".")
    return _with_session(redirect("/desk/", 303), raw)


@bp.get("/")
def index():  # type: ignore[no-untyped-def]
    ctx = web()
    return _render("index.html", title="Issues", issues=list_issues(ctx.settings, ctx.db))


@bp.post("/logout")
def logout():  # type: ignore[no-untyped-def]
    sessions.logout(web().db, request.cookies.get(cookie_name(), ""), client_ip(request))
    response = redirect("/desk/login", 303)
    response.delete_cookie(cookie_name(), path="/desk", secure=_secure(), httponly=True, samesite="Strict")
    return response

