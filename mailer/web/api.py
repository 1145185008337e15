"""POST /api/subscribe: JSON sign-up for the group's own website, with configurable CORS.

Only ``application/json`` bodies are accepted, so a cross-site browser request
always needs a CORS preflight; an ``Origin`` outside settings.web_cors_origins
(and our own) is refused with 403 and nothing stored (C8).
"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from mailer.errors import InputError
from mailer.models import ConsentSource
from mailer.signups import limits
from mailer.web.guard import HONEYPOT_FIELD, origin_of, own_origins
from mailer.web.pages import web
from mailer.web.signup import THANKS, FieldError, read_fields, sign_up

bp = Blueprint("api", __name__)


def _cors(response: Response) -> Response:
    origin = request.headers.get("Origin", "")
    if origin and origin_of(origin) in set(web().settings.web_cors_origins):
        response.headers["Access-Control-Allow-Origin"] = origin_of(origin)
        response.headers["Access-Control-Allow-Methods"] = "POST"
        response.headers["Access-Control-Allow-Headers"] = "Content-Type"
        response.headers["Access-Control-Max-Age"] = "3600"
    response.headers["Vary"] = "Origin"
    return response


def _answer(status: int, **body: object) -> tuple[Response, int]:
    return _cors(jsonify(body)), status


def _json_body() -> object:
    """The parsed body, or None when it is not JSON (too deeply nested counts as not JSON)."""
    try:
        return request.get_json(silent=True)
    except RecursionError:
        return None


@bp.route("/api/subscribe", methods=["OPTIONS"])
def preflight():  # type: ignore[no-untyped-def]
    return _cors(Response(status=204))


@bp.post("/api/subscribe")
def subscribe_json():  # type: ignore[no-untyped-def]
    ctx = web()
    settings = ctx.settings
    origin = request.headers.get("Origin")
    if origin and origin_of(origin) not in own_origins(settings, request) | set(settings.web_cors_origins):
        return _answer(403, ok=False, error="requests from this website are not accepted", field="origin")
    if not request.is_json:
        return _answer(415, ok=False, error="send the body as application/json", field="body")
    data = _json_body()
    if not isinstance(data, dict):
        return _answer(400, ok=False, error="the body is not a JSON object", field="body")
    if data.get(HONEYPOT_FIELD):
        return _answer(202, ok=True, message=THANKS)
    slug = data.get("list")
    if not isinstance(slug, str) or not slug:
        return _answer(400, ok=False, error="missing 'list' (the list's slug)", field="list")
    try:
        req = read_fields(data, data.get("consent"))
        sign_up(ctx, slug, req, ConsentSource.API, form_id=f"api:{origin_of(origin or '') or 'direct'}"[:100])
    except FieldError as exc:
        return _answer(400, ok=False, error=str(exc), field=exc.field)
    except limits.RateLimited as exc:
        return _answer(429, ok=False, error=str(exc), field="")
    except InputError:
        return _answer(404, ok=False, error=f"unknown list {slug[:64]!r}", field="list")
    return _answer(202, ok=True, message=THANKS)
