"""The desk's login form, set-password link and logout."""

from __future__ import annotations

from flask import g, redirect, request

from mailer.desk import accounts, sessions
from mailer.desk.pages import bp, checked_post, cookie_name, message, render, secure, with_session
from mailer.errors import InputError
from mailer.web.guard import client_ip
from mailer.web.pages import web


def _login_page(status: int = 200, error: str = "", email: str = "") -> tuple[str, int]:
    return render("login.html", status, title="Log in", error=error, email=email,
                   csrf_token=web().forms.mint())


@bp.get("/login")
def login_form():  # type: ignore[no-untyped-def]
    if g.desk_login is not None:
        return redirect("/desk/", 303)
    return _login_page()


@bp.post("/login")
def login_submit():  # type: ignore[no-untyped-def]
    checked_post()
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
    return with_session(redirect("/desk/", 303), raw)


def _password_page(account: accounts.Account, status: int = 200, error: str = "") -> tuple[str, int]:
    return render("password.html", status, title="Choose your password", account=account, error=error,
                   min_length=accounts.MIN_PASSWORD, csrf_token=web().forms.mint())


@bp.get("/password/<secret>")
def password_form(secret: str):  # type: ignore[no-untyped-def]
    try:
        account = accounts.link_account(web().db, secret)
    except accounts.LinkError as exc:
        return message("Link not valid", str(exc)[:1].upper() + str(exc)[1:] + ".", 410)
    return _password_page(account)


@bp.post("/password/<secret>")
def password_submit(secret: str):  # type: ignore[no-untyped-def]
    checked_post()
    ctx = web()
    password, again = request.form.get("password", ""), request.form.get("password_again", "")
    try:
        account = accounts.link_account(ctx.db, secret)
        if password != again:
            return _password_page(account, 400, "The two passwords differ.")
        raw = sessions.set_password_and_login(ctx.db, secret, password, client_ip(request))
    except accounts.LinkError as exc:
        return message("Link not valid", str(exc)[:1].upper() + str(exc)[1:] + ".", 410)
    except InputError as exc:
        return _password_page(account, 400, str(exc)[:1].upper() + str(exc)[1:] + ".")
    return with_session(redirect("/desk/", 303), raw)


@bp.post("/logout")
def logout():  # type: ignore[no-untyped-def]
    sessions.logout(web().db, request.cookies.get(cookie_name(), ""), client_ip(request))
    response = redirect("/desk/login", 303)
    response.delete_cookie(cookie_name(), path="/desk", secure=secure(), httponly=True, samesite="Strict")
    return response

