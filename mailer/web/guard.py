"""Request guards: signed form tokens (CSRF), Origin checks, client IP, security headers.

Form tokens are session-less: an itsdangerous-signed, timestamped value put
in every form and checked on POST (STANDARDS C8). The public pages set no
cookie; only the editor's desk (mailer.desk.pages) has a session cookie.
"""

from __future__ import annotations

import secrets
from urllib.parse import urlsplit

from flask import Request, Response
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from mailer.config import Settings, signing_keys

FORM_TOKEN_MAX_AGE_S = 6 * 3600
FORM_TOKEN_FIELD = "csrf_token"
HONEYPOT_FIELD = "website"

# pages: own CSS only, no script anywhere, forms post to ourselves only
PAGE_CSP = ("default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
            "base-uri 'none'")
# the desk: its own static scripts (progress, live preview, rich paste) and previews framed from itself
DESK_CSP = ("default-src 'none'; style-src 'self'; img-src 'self' data:; script-src 'self'; connect-src 'self'; "
            "frame-src 'self'; form-action 'self'; base-uri 'none'")
# archived issues are e-mail HTML: inline styles and remote images, still no script
ARCHIVE_CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src 'self' https: data:; "
               "form-action 'none'; base-uri 'none'")


class FormTokens:
    """Mint and check the signed token every HTML form carries."""

    def __init__(self, settings: Settings) -> None:
        keys = list(reversed(signing_keys(settings)))
        self._serializer = URLSafeTimedSerializer(keys, salt="mailer.web.form.v1")

    def mint(self) -> str:
        return self._serializer.dumps(secrets.token_urlsafe(8))

    def valid(self, token: str | None) -> bool:
        if not token or len(token) > 200:
            return False
        try:
            self._serializer.loads(token, max_age=FORM_TOKEN_MAX_AGE_S)
        except (SignatureExpired, BadSignature):
            return False
        return True


def origin_of(url: str) -> str:
    """``https://host:port`` of a URL, lower-cased; '' when it has none."""
    parts = urlsplit(url.strip())
    if not parts.scheme or not parts.netloc:
        return ""
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}"


def own_origins(settings: Settings, request: Request) -> set[str]:
    """Where our own forms are served from: base_url, and the host this request reached."""
    return {origin_of(settings.base_url), origin_of(request.host_url)}


def origin_allowed(request: Request, allowed: set[str]) -> bool:
    """False when the request names an Origin (or, lacking one, a Referer) outside *allowed*."""
    origin = request.headers.get("Origin")
    if origin is None:
        referer = request.headers.get("Referer")
        if not referer:
            return True
        origin = origin_of(referer)
    return origin.lower() in allowed


def client_ip(request: Request) -> str:
    """The client's address (ProxyFix has already applied X-Forwarded-For when trusted)."""
    return (request.remote_addr or "")[:64]


def add_security_headers(response: Response, frame_origins: tuple[str, ...] = ()) -> Response:
    """CSP, nosniff, referrer only to ourselves (tokens live in URLs), no framing unless embedding is allowed."""
    csp = response.headers.get("Content-Security-Policy", PAGE_CSP)
    ancestors = " ".join(frame_origins) if frame_origins else "'none'"
    response.headers["Content-Security-Policy"] = f"{csp}; frame-ancestors {ancestors}"
    if not frame_origins:
        response.headers["X-Frame-Options"] = "DENY"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Cross-Origin-Opener-Policy"] = "same-origin"
    response.headers.setdefault("Cache-Control", "no-store")
    return response
