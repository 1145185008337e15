"""`mailer serve`: the sign-up, confirm, unsubscribe, preferences and archive pages."""

from __future__ import annotations

import click
from rich.console import Console

from mailer.cli import AppContext, pass_app


@click.command()
@click.option("--host", default=None, help="Address to listen on (default: setting web.host).")
@click.option("--port", type=click.IntRange(1, 65535), default=None, help="Port (default: setting web.port).")
@click.option("--production", is_flag=True,
              help="Serve with waitress (multi-threaded WSGI server) instead of the development server.")
@click.option("--threads", type=click.IntRange(1, 64), default=8, show_default=True,
              help="Worker threads of the production server.")
@pass_app
def serve(app: AppContext, host: str | None, port: int | None, production: bool, threads: int) -> None:
    """Serve the web pages; a background thread applies sign-ups and sends their mails (unless turned off)."""
    from rich.markup import escape

    from mailer.settingrules import LOCAL_BACKENDS, local_links_warning
    from mailer.web import create_app, stop_app

    settings = app.settings
    host = host or settings.web_host
    port = port or settings.web_port
    flask_app = create_app(settings, app.db, start_queue=settings.web_background_thread)
    Console(stderr=True).print(f"serving [bold]{settings.group_name}[/] on http://{host}:{port} "
                               f"({'waitress' if production else 'development server'}); "
                               f"links in mails point to {settings.base_url}"
                               + ("" if settings.web_background_thread else
                                  "; sign-ups are applied by `mailer worker` (web.background_thread = false)"))
    warning = local_links_warning(settings.base_url)
    if warning and settings.backend not in LOCAL_BACKENDS:
        Console(stderr=True).print(f"[yellow]warning:[/yellow] {escape(warning)} (confirmation mails)")
    try:
        if production:
            import waitress

            waitress.serve(flask_app, host=host, port=port, threads=threads, ident="mailer")
        else:
            flask_app.run(host=host, port=port, debug=False, use_reloader=False)
    finally:
        stop_app(flask_app)


COMMANDS: list[click.Command] = [serve]
