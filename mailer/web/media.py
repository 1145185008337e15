"""The images of previewed and sent issues (`media_dir`), as content.images published them."""

from __future__ import annotations

import re

from flask import Blueprint, Response, abort

from mailer.web.pages import web

bp = Blueprint("media", __name__)
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,200}")
TYPES = {"jpg": "image/jpeg", "png": "image/png", "gif": "image/gif", "webp": "image/webp"}


@bp.get("/media/<slug>/<name>")
def image(slug: str, name: str):  # type: ignore[no-untyped-def]
    mimetype = TYPES.get(name.rsplit(".", 1)[-1].lower())
    if mimetype is None or not _NAME.fullmatch(slug) or not _NAME.fullmatch(name) or ".." in slug + name:
        abort(404)
    settings = web().settings
    path = settings.path(settings.media_dir) / slug / name
    if not path.is_file():
        abort(404)
    response = Response(path.read_bytes(), 200, mimetype=mimetype)
    response.headers["Cache-Control"] = "public, max-age=31536000, immutable"   # the name holds a hash
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response
