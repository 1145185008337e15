"""The logged-in account's own page: the TOTP second factor (set up with a QR code, confirm, turn off).

While an admin requires TOTP, an account without it is sent here after login and
can reach nothing else of the desk (but log out) until it has set it up.
"""

from __future__ import annotations

from flask import abort, g, redirect, request

from mailer.desk import totp
from mailer.desk.pages import bp, render
from mailer.errors import InputError
from mailer.web.guard import client_ip
from mailer.web.pages import web

# what an account that must set up TOTP may still reach
SETUP_ENDPOINTS = {"desk.account", "desk.totp_start", "desk.totp_confirm", "desk.totp_cancel", "desk.logout",
                   "desk.script"}
DONE = {"on": "Two-step login is on: from now on, the desk asks for a code after your password.",
        "off": "Two-step login is off.", "cancel": "Nothing changed: two-step login stays off."}


@bp.before_request
def _totp_due():  # type: ignore[no-untyped-def]
    """An account that must set up TOTP first reaches only its account page (and log out)."""
    login = g.get("desk_login")
    if login is None or not login.totp_due or request.endpoint in SETUP_ENDPOINTS:
        return None
    if request.path.endswith(".json"):
        abort(403)
    return redirect("/desk/account", 303)


def _page(status: int = 200, error: str = "", done: str = "") -> tuple[str, int]:
    ctx = web()
    login = g.desk_login
    secret = totp.pending(ctx.db, ctx.settings, login.user_id)
    setup = None
    if secret:
        uri = totp.provisioning_uri(ctx.settings, login.email, secret)
        setup = {"secret": " ".join(secret[i:i + 4] for i in range(0, len(secret), 4)),
                 "qr": totp.qr_data_uri(uri)}
    return render("account.html", status, title="Your account", section="account", setup=setup, error=error,
                  done=DONE.get(done, ""), required=totp.required(ctx.db))


@bp.get("/account")
def account():  # type: ignore[no-untyped-def]
    return _page(done=request.args.get("done", ""))


@bp.post("/account/totp/start")
def totp_start():  # type: ignore[no-untyped-def]
    ctx = web()
    if g.desk_login.totp:
        return _page(409, "Two-step login is on already.")
    totp.begin(ctx.db, ctx.settings, g.desk_login.user_id)
    return redirect("/desk/account#setup", 303)


@bp.post("/account/totp/confirm")
def totp_confirm():  # type: ignore[no-untyped-def]
    ctx = web()
    try:
        totp.confirm(ctx.db, ctx.settings, g.desk_login.user_id, request.form.get("code", "")[:20],
                     client_ip(request))
    except totp.CodeRefused as exc:
        return _page(422, str(exc))
    except InputError as exc:
        return _page(409, str(exc)[:1].upper() + str(exc)[1:] + ".")
    return redirect("/desk/account?done=on", 303)


@bp.post("/account/totp/cancel")
def totp_cancel():  # type: ignore[no-untyped-def]
    totp.cancel(web().db, g.desk_login.user_id)
    return redirect("/desk/account?done=cancel", 303)


@bp.post("/account/totp/off")
def totp_off():  # type: ignore[no-untyped-def]
    ctx = web()
    try:
        totp.turn_off(ctx.db, ctx.settings, g.desk_login.user_id, request.form.get("password", "")[:1024],
                      request.form.get("code", "")[:20], client_ip(request))
    except totp.CodeRefused as exc:
        return _page(422, str(exc))
    except totp.StillRequired as exc:
        return _page(403, str(exc)[:1].upper() + str(exc)[1:] + ".")
    except InputError as exc:
        return _page(422, str(exc)[:1].upper() + str(exc)[1:] + ".")
    return redirect("/desk/account?done=off", 303)
