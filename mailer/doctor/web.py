"""base_url over https with a certificate that verifies, and the one-click endpoint (RFC 8058).

The one-click check POSTs `List-Unsubscribe=One-Click` to the unsubscribe path with a token
that cannot verify: the endpoint answers it with a 4xx that is neither 404 (no endpoint there)
nor 405 (POST refused, e.g. by a proxy), and never with a redirect (STANDARDS B3). Redirects are
not followed.
"""

from __future__ import annotations

import http.client
import ssl
from typing import Iterator
from urllib.parse import urlsplit

from mailer.config import Settings
from mailer.doctor import Finding, fail, ok, warn

NOT_A_TOKEN = "doctor-check-not-a-token"
PROXY_FIX = "put mailer serve behind an https reverse proxy (see docs/deploy) and set base_url to its address"


def _connection(url: str, ca_file: str | None, timeout: float) -> http.client.HTTPConnection:
    parts = urlsplit(url)
    if parts.scheme == "https":
        context = ssl.create_default_context(cafile=ca_file or None)
        return http.client.HTTPSConnection(parts.hostname or "", parts.port, timeout=timeout, context=context)
    return http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=timeout)


def _request(url: str, method: str, path: str, ca_file: str | None, timeout: float,
             body: str | None = None) -> http.client.HTTPResponse:
    connection = _connection(url, ca_file, timeout)
    headers = {"User-Agent": "mailer-doctor"}
    if body is not None:
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    try:
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        response.read()
        return response
    finally:
        connection.close()


def _failure(url: str, exc: Exception) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"{url}: the certificate does not verify: {exc.verify_message}"
    if isinstance(exc, ssl.SSLError):
        return f"{url}: TLS failed: {exc.reason or exc}"
    if isinstance(exc, TimeoutError):
        return f"{url}: no answer within the timeout"
    if isinstance(exc, http.client.HTTPException):
        return f"{url}: not an HTTP answer ({type(exc).__name__})"
    return f"{url}: cannot connect: {getattr(exc, 'strerror', None) or exc}"


def web_findings(settings: Settings, ca_file: str | None, timeout: float) -> Iterator[Finding]:
    """Is base_url https with a valid certificate, and does its one-click endpoint take a POST?"""
    url = settings.base_url
    parts = urlsplit(url)
    base_path = parts.path.rstrip("/")
    if parts.scheme != "https":
        yield fail("https", f"base_url {url} is not https: every link in every mail would use it", PROXY_FIX)
    else:
        try:
            response = _request(url, "GET", base_path or "/", ca_file, timeout)
        except (OSError, http.client.HTTPException) as exc:
            hint = ("use a certificate from a public CA (Caddy gets one by itself), or --ca-file to "
                    "trust a private CA" if isinstance(exc, ssl.SSLError) else
                    "start mailer serve and the proxy, and check base_url")
            yield fail("https", _failure(url, exc), hint)
            yield warn("one-click", "not checked: base_url does not answer over https")
            return
        yield ok("https", f"{url} answers over https with a valid certificate (HTTP {response.status})")
    from mailer.mail.links import UNSUBSCRIBE_PATH

    path = base_path + UNSUBSCRIBE_PATH.split("<", 1)[0] + NOT_A_TOKEN
    target = f"{parts.scheme}://{parts.netloc}{path}"
    try:
        response = _request(url, "POST", path, ca_file, timeout, body="List-Unsubscribe=One-Click")
    except (OSError, http.client.HTTPException) as exc:
        yield fail("one-click", _failure(target, exc), "start mailer serve and check base_url")
        return
    status = response.status
    if 300 <= status < 400:
        yield fail("one-click", f"POST {target} answers a redirect (HTTP {status} to "
                                f"{response.getheader('Location')}); mail providers do not follow it",
                   "point base_url at the final address so the POST reaches mailer serve directly")
    elif status == 404:
        yield fail("one-click", f"POST {target} answers 404: no unsubscribe endpoint there",
                   "set base_url to the address of mailer serve, with its path prefix if any")
    elif status == 405:
        yield fail("one-click", f"POST {target} answers 405: POST is refused",
                   "let POST through to mailer serve in the reverse proxy")
    elif 400 <= status < 500:
        yield ok("one-click", f"POST {target} answers {status} to a token that does not verify (RFC 8058 "
                              "endpoint present)")
    elif status < 300:
        yield warn("one-click", f"POST {target} accepts a token that does not verify (HTTP {status})",
                   "check that base_url points at mailer serve")
    else:
        yield fail("one-click", f"POST {target} answers HTTP {status}", "see the log of mailer serve")
