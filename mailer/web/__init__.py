"""The web app: landing page, sign-up, confirm, one-click unsubscribe, preferences, archive.

HTTP only: each view parses the request, calls a function of the layer below
(`mailer.signups`, `mailer.people.preferences`, `mailer.people.directory`,
`mailer.content.archive`) and
renders the answer; no SQL here. May import those, mail (links, tokens),
content.templating and the floor.

`create_app(settings, db)` builds it; `make_wsgi_app()` is the production entry
point (``waitress-serve --call mailer.web:make_wsgi_app``), reading settings
from mailer.toml and MAILER_* like every command; with ``web.background_thread =
false`` it leaves applying sign-ups and sending their mails to `mailer worker`. The public pages set
no cookies and keep no sessions; the editor's desk at /desk/ (mailer.desk.pages) has both. No
scripts: every page works without JavaScript.
"""

from __future__ import annotations

import atexit

from flask import Flask, Response, abort, g, request
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix

from mailer.config import Settings, load_settings
from mailer.content.folders import find_template_file
from mailer.content.templating import Kind, environment
from mailer.db import Database
from mailer.desk import pages as desk_pages
from mailer.errors import MailerError
from mailer.keyring import check_keys
from mailer.signups.intake import intake_writer
from mailer.signups.limits import SignupLimiter
from mailer.signups.runner import SignupRunner
from mailer.signups.writegate import gate_sqlite_writes
from mailer.web import api, archive, media, optin, preferences, signup, unsubscribe
from mailer.web.guard import FormTokens, add_security_headers
from mailer.web.pages import WebContext, message_page

MAX_BODY = 64 * 1024
ERRORS = {
    404: ("Not found", "There is nothing at this address."),
    405: ("Not allowed", "This page cannot be used that way."),
    413: ("Too large", "What you sent is too large."),
}


def create_app(settings: Settings, db: Database | None = None, *, start_queue: bool = False) -> Flask:
    """The Flask app for *settings*; with start_queue, a thread applies sign-ups and sends their mails
    (`mailer.signups.runner`). Without it the app only stores sign-ups: `mailer worker` (or a test)
    applies them.
    """
    db = db or Database.from_settings(settings)
    gate_sqlite_writes(db.engine)
    app = Flask(__name__, static_folder=None, template_folder=None)
    app.config.update(MAX_CONTENT_LENGTH=MAX_BODY)
    app.jinja_env = environment(settings, Kind.PAGE)  # type: ignore[misc]  # sandboxed, the one search path
    ctx = WebContext(settings=settings, db=db, forms=FormTokens(settings), limiter=SignupLimiter(db),
                     writer=intake_writer(db))
    app.extensions["mailer"] = ctx
    for module in (signup, api, optin, unsubscribe, preferences, archive, media, desk_pages):
        app.register_blueprint(module.bp)
    app.add_url_rule("/static/site.css", "site_css", lambda: _css(settings))

    @app.after_request
    def _headers(response: Response) -> Response:
        return add_security_headers(response, getattr(g, "frame_origins", ()))

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):  # type: ignore[no-untyped-def]
        title, text = ERRORS.get(exc.code or 500, ("Error", "Something went wrong."))
        if request.path.startswith("/api/"):
            return {"ok": False, "error": text}, exc.code or 500
        return message_page(title, text, exc.code or 500)

    @app.errorhandler(Exception)
    def _crash(exc: Exception):  # type: ignore[no-untyped-def]
        app.logger.exception("unhandled error on %s", request.path)
        return message_page("Sorry", "Something went wrong on our side. Please try again later.", 500)

    if settings.web_trust_proxy:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=1)  # type: ignore[method-assign]
    if start_queue:
        ctx.runner = SignupRunner(settings, db)
        ctx.runner.start()
        atexit.register(ctx.runner.stop)
    return app


def _css(settings: Settings) -> Response:
    path = find_template_file(settings, "web/site.css")
    if path is None:
        abort(404)
    response = Response(path.read_bytes(), mimetype="text/css")
    response.headers["Cache-Control"] = "public, max-age=3600"
    return response


def stop_app(app: Flask) -> None:
    """Stop the app's sign-up runner, if it runs."""
    runner = app.extensions["mailer"].runner
    if runner is not None:
        runner.stop()


def make_wsgi_app() -> Flask:
    """Production entry point: settings from mailer.toml + MAILER_* (MAILER_ROOT names the folder).

    A bad setting, a missing database or keys the database does not know stop the server
    process with one ``error:`` line, as they stop every command.
    """
    try:
        settings = load_settings()
        db = Database.from_settings(settings)
        db.require_schema()
        check_keys(db, settings)
    except MailerError as exc:
        raise SystemExit(f"error: {exc}") from None
    return create_app(settings, db, start_queue=settings.web_background_thread)
