"""The desk's login form, its code step (TOTP), the set-password link and logout."""

from __future__ import annotations

from flask import g, make_response, redirect, request

from mailer.desk import accounts, sessions
from mailer.desk.pages import bp, checked_post, cookie_name, message, render, secure, with_session
from mailer.desk.totp import CodeRefused
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
    if raw.challenge:                         # TOTP on: the code step, with its own short-lived cookie
        response = redirect("/desk/login/code", 303)
        response.set_cookie(challenge_cookie(), raw.challenge, max_age=int(sessions.CHALLENGE.total_seconds()),
                            path="/desk/login", secure=secure(), httponly=True, samesite="Strict")
        response.delete_cookie(cookie_name(), path="/desk", secure=secure(), httponly=True, samesite="Strict")
        return response
    return with_session(redirect("/desk/", 303), raw.session)


def challenge_cookie() -> str:
    """The cookie of a login's code step (its challenge id), beside the session cookie."""
    return cookie_name() + "-code"


def _code_page(email: str, status: int = 200, error: str = "") -> tuple[str, int]:
    return render("code.html", status, title="Your code", email=email, error=error, csrf_token=web().forms.mint())


def _challenge_gone():  # type: ignore[no-untyped-def]
    html, status = message("Log in again", sessions.CHALLENGE_GONE_TEXT, 410)
    response = make_response(html, status)
    response.delete_cookie(challenge_cookie(), path="/desk/login", secure=secure(), httponly=True,
                           samesite="Strict")
    return response


@bp.get("/login/code")
def code_form():  # type: ignore[no-untyped-def]
    email = sessions.challenge_email(web().db, request.cookies.get(challenge_cookie()))
    if email is None:
        return redirect("/desk/login", 303)
    return _code_page(email)


@bp.post("/login/code")
def code_submit():  # type: ignore[no-untyped-def]
    checked_post()
    ctx = web()
    raw = request.cookies.get(challenge_cookie())
    try:
        session_id = sessions.login_code(ctx.db, ctx.settings, raw, request.form.get("code", "")[:20],
                                         client_ip(request))
    except sessions.ChallengeGone:
        return _challenge_gone()
    except sessions.LoginLocked as exc:
        return _login_page(429, str(exc))
    except (sessions.LoginFailed, CodeRefused) as exc:
        return _code_page(sessions.challenge_email(ctx.db, raw) or "", 401, str(exc))
    response = with_session(redirect("/desk/", 303), session_id)
    response.delete_cookie(challenge_cookie(), path="/desk/login", secure=secure(), httponly=True,
                           samesite="Strict")
    return response


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

