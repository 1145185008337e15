"""The desk's web pages: a blueprint at /desk/, with one module per part of the desk.

HTTP only: parse, call mailer.desk's modules (and the layers the CLI calls), render;
no SQL and no business rules here. Every route but the login form and the
set-password link needs a session; every state change is a POST carrying a CSRF
token (the login and link forms the signed, session-less form token of the public
pages; logged-in forms the session's own), from our own origin. The cookie is
HttpOnly, SameSite=Strict, scoped to /desk and Secure when base_url is https. Its
name takes the `__Secure-` prefix there, not `__Host-`, which browsers accept only
with Path=/ and would send the desk's cookie to every public page.

- auth:   login, the set-password link, logout
- issues, issuemedia: the issue list; one issue's page, reports, images and preview
- subscribers, subscriber_import: search, one person, add, unsubscribe, erase, export; the CSV import

Every module adds its routes to `bp`; scripts are static files (templates/desk/js/NAME.js at
/desk/js/NAME.js, served to anyone: they hold no data) and every page works without them; JSON routes end in `.json` (401 without a session).
"""

from __future__ import annotations

import re
from typing import Any

from flask import Blueprint, Response, abort, g, redirect, render_template, request

from mailer.content.folders import find_template_file
from mailer.desk import sessions
from mailer.web.guard import DESK_CSP, FORM_TOKEN_FIELD, origin_allowed, own_origins
from mailer.web.pages import web

bp = Blueprint("desk", __name__, url_prefix="/desk")
SCRIPT_NAME = re.compile(r"[a-z][a-z0-9-]{0,40}")
PUBLIC_ENDPOINTS = {"desk.script", "desk.login_form", "desk.login_submit", "desk.password_form", "desk.password_submit",
                    "desk.code_form", "desk.code_submit"}   # the code step of a login with TOTP


@bp.get("/js/<name>.js")
def script(name: str) -> Response:
    """A desk script: a static file of templates/desk/js/ (through the one template search path)."""
    path = find_template_file(web().settings, f"desk/js/{name}.js") if SCRIPT_NAME.fullmatch(name) else None
    if path is None:
        abort(404)
    response = Response(path.read_bytes(), mimetype="text/javascript")
    response.headers["Cache-Control"] = "public, max-age=3600"
    return response


def cookie_name_for(base_url: str) -> str:
    """The session cookie's name: with the `__Secure-` prefix when base_url is https."""
    return "__Secure-mailer-desk" if base_url.lower().startswith("https://") else "mailer-desk"


def cookie_name() -> str:
    return cookie_name_for(web().settings.base_url)


def secure() -> bool:
    return web().settings.base_url.lower().startswith("https://")


def render(template: str, status: int = 200, **context: Any) -> tuple[str, int]:
    """Render templates/desk/<template>; `section` names the part of the desk the nav marks."""
    settings = web().settings
    context.setdefault("section", "")
    html = render_template(f"desk/{template}", group_name=settings.group_name, lang=settings.language,
                           dir=settings.text_direction, login=g.get("desk_login"), **context)
    return html, status


def message(title: str, text: str, status: int) -> tuple[str, int]:
    """A desk page that says one thing (a result or an error), with its HTTP status."""
    return render("message.html", status, title=title, message=text)


def require_admin() -> None:
    """403 unless the session's account is an admin."""
    if g.desk_login is None or g.desk_login.role != "admin":
        abort(403)


def with_session(response: Response, raw: str) -> Response:
    response.set_cookie(cookie_name(), raw, max_age=int(sessions.ABSOLUTE.total_seconds()), path="/desk",
                        secure=secure(), httponly=True, samesite="Strict")
    return response


def checked_post() -> None:
    """400 for a POST from another origin or without a valid form token (pre-login forms)."""
    ctx = web()
    if not origin_allowed(request, own_origins(ctx.settings, request)):
        abort(400)
    if not ctx.forms.valid(request.form.get(FORM_TOKEN_FIELD)):
        abort(400)


@bp.after_request
def _desk_headers(response: Response) -> Response:
    """The desk's CSP (its own scripts and framed previews); a page may set a stricter one itself."""
    response.headers.setdefault("Content-Security-Policy", DESK_CSP)
    return response


@bp.before_request
def _load_login() -> Response | None:
    g.desk_login = sessions.current(web().db, request.cookies.get(cookie_name()))
    if g.desk_login is None and request.endpoint not in PUBLIC_ENDPOINTS:
        if request.path.endswith(".json"):   # what scripts poll (progress) gets 401, not a login page
            abort(401)
        return redirect("/desk/login", 303)
    if request.method == "POST" and g.desk_login is not None and request.endpoint not in PUBLIC_ENDPOINTS:
        if not origin_allowed(request, own_origins(web().settings, request)):
            abort(400)
        if not sessions.csrf_valid(g.desk_login, request.form.get(FORM_TOKEN_FIELD)):
            abort(400)
    return None


from mailer.desk.pages import account, admin, auth, digests, intake, issuemedia, issues, lists, reportedit, schedules, segments, sending, subscriber_tags, subscribers  # noqa: E402,F401  (their routes join bp)
