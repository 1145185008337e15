"""Local preview of an issue: files in build/<slug>/, and a small server that rebuilds on change.

A preview personalised for a subscriber (`mailer preview --as EMAIL`) holds
their address and name in clear, so its folder is marked: MARKER holds a
salted HMAC of the address, never the address, and `forget_previews` (called
by people.erasure) deletes every preview folder marked for an erased person.
The salt is random per folder rather than the suppression hash key: this
module may not import people, works without a hash key, and the marker
guards nothing the folder beside it does not already show.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import secrets
import shutil
import tempfile
import threading
from dataclasses import dataclass, replace
from email import message_from_bytes, policy
from http import HTTPStatus
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from mailer.content.compose import ComposedIssue, compose_issue
from mailer.content.folders import find_issue
from mailer.content.images import media_url, publish
from mailer.config import Settings
from mailer.errors import MailerError
from mailer.mail.message import MessageFactory, Recipient
from mailer.mail.previewpage import dark_copy, index_page, without_style
from mailer.content.folders import search_path

log = logging.getLogger(__name__)

PREVIEW_KEY = "preview-only-key-links-in-previews-do-not-work"
MARKER = ".personalised.json"   # in a preview folder made for a real subscriber
SAMPLE = Recipient(key="preview", email="sam.sample@example.org", name="Sam Sample",
                   subscriber_uid="preview", list_slug="news", list_name="Newsletter")


@dataclass(frozen=True)
class PreviewFiles:
    folder: Path
    html: Path
    text: Path
    eml: Path
    index: Path
    nameless_html: Path
    dark_html: Path
    nostyle_html: Path


def preview_settings(settings: Settings) -> Settings:
    """Settings able to sign links: the real keys if set, else a preview-only key."""
    return settings if settings.secret_keys else settings.replace(secret_keys=(PREVIEW_KEY,))


def render_sample(settings: Settings, issue: ComposedIssue, recipient: Recipient | None = None) -> bytes:
    """The whole message one recipient would get, as bytes (CRLF)."""
    recipient = recipient or Recipient(**{**SAMPLE.__dict__, "list_slug": issue.lists[0] if issue.lists else "news"})
    factory = MessageFactory(preview_settings(settings), subject=issue.subject, html=issue.html,
                             text=issue.text, issue_slug=issue.slug, preheader=issue.preheader)
    return factory.render(recipient).data


def _parts(data: bytes) -> tuple[list[tuple[str, str]], dict[str, str]]:
    message = message_from_bytes(data, policy=policy.default)
    return ([(k, str(v)) for k, v in message.items()],
            {p.get_content_type(): p.get_content() for p in message.walk() if not p.is_multipart()})


def write_preview(settings: Settings, issue: ComposedIssue, recipient: Recipient | None = None) -> PreviewFiles:
    """Write build/<slug>/: the mail for a named and a nameless reader, its dark and style-less
    variants, archive.html, sample.eml and index.html; all or nothing (a temp folder renamed)."""
    named = recipient or Recipient(**{**SAMPLE.__dict__, "list_slug": issue.lists[0] if issue.lists else "news"})
    data = render_sample(settings, issue, named)
    headers, parts = _parts(data)
    _, nameless = _parts(render_sample(settings, issue, replace(named, name="")))
    html, text = parts.get("text/html", ""), parts.get("text/plain", "")
    files = {
        "issue.html": html, "issue.txt": text,
        "issue-nameless.html": nameless.get("text/html", ""), "issue-nameless.txt": nameless.get("text/plain", ""),
        "issue-dark.html": dark_copy(html), "issue-nostyle.html": without_style(html),
        "archive.html": issue.archive_html,
        "index.html": index_page(issue.subject, named.name or "no name", issue.warnings, headers, text,
                                 nameless.get("text/plain", "")),
    }
    build = settings.path(settings.build_dir)
    build.mkdir(parents=True, exist_ok=True)
    final = build / issue.slug
    tmp = Path(tempfile.mkdtemp(prefix=f".{issue.slug}.", dir=build))
    try:
        # the issue's own images: published for `mailer serve`, and copied beside the preview files
        # so that the preview shows them from disk
        media = media_url(settings, issue.slug, "")
        if issue.images:
            publish(issue.images)
            publish(issue.images, into=tmp / "media")
        for name, content in files.items():
            (tmp / name).write_text(content.replace(media, "media/") if issue.images else content, encoding="utf-8")
        (tmp / "sample.eml").write_bytes(data)
        if recipient is not None:
            (tmp / MARKER).write_text(json.dumps(_marker(recipient.email)), encoding="utf-8")
        os.chmod(tmp, 0o755)
        old = None
        if final.exists():
            old = build / f".{issue.slug}.old"
            shutil.rmtree(old, ignore_errors=True)
            final.rename(old)
        tmp.rename(final)
        if old:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return PreviewFiles(final, final / "issue.html", final / "issue.txt", final / "sample.eml",
                        final / "index.html", final / "issue-nameless.html", final / "issue-dark.html",
                        final / "issue-nostyle.html")


def _address_hash(salt: str, email: str) -> str:
    return hmac.new(bytes.fromhex(salt), email.strip().lower().encode(), hashlib.sha256).hexdigest()


def _marker(email: str) -> dict[str, str]:
    salt = secrets.token_hex(16)
    return {"salt": salt, "hmac_sha256": _address_hash(salt, email)}


def _marked_for(folder: Path, email: str) -> bool:
    try:
        marker = json.loads((folder / MARKER).read_text(encoding="utf-8"))
        return hmac.compare_digest(_address_hash(marker["salt"], email), marker["hmac_sha256"])
    except (OSError, ValueError, KeyError, TypeError):  # no marker, or not one this module wrote
        return False


def forget_previews(settings: Settings, email: str) -> int:
    """Delete every preview folder under build/ personalised for *email*; return how many."""
    build = settings.path(settings.build_dir)
    if not build.is_dir():
        return 0
    removed = 0
    for folder in sorted(build.iterdir()):
        if folder.is_dir() and not folder.is_symlink() and _marked_for(folder, email):
            shutil.rmtree(folder)
            removed += 1
    if removed:
        log.warning("erasure: deleted %d preview folder(s) in %s made for this person", removed, build)
    return removed


class PreviewServer:
    """Serves build/<slug>/ and rebuilds when the issue or its templates change."""

    def __init__(self, settings: Settings, issue_dir: str | Path, host: str = "127.0.0.1", port: int = 8026,
                 recipient: Recipient | None = None) -> None:
        self.settings = settings
        self.folder = find_issue(settings, issue_dir)
        self.recipient = recipient
        self.version = 0
        self.error = ""
        self._stop = threading.Event()
        self._snapshot: dict[str, float] = {}
        self.files = self.rebuild()
        server = self

        class Handler(SimpleHTTPRequestHandler):
            def __init__(self, *args, **kwargs):  # type: ignore[no-untyped-def]
                super().__init__(*args, directory=str(server.files.folder), **kwargs)

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                if self.path.startswith("/__status"):
                    body = json.dumps({"version": server.version, "error": server.error}).encode()
                    self.send_response(HTTPStatus.OK)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                super().do_GET()

            def end_headers(self) -> None:
                self.send_header("Cache-Control", "no-store")
                super().end_headers()

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass

        self.httpd = ThreadingHTTPServer((host, port), Handler)
        self.address = f"http://{host}:{self.httpd.server_address[1]}/"

    def _watched(self) -> dict[str, float]:
        files: dict[str, float] = {}
        for root in [self.folder, *map(Path, search_path(self.settings))]:
            for p in root.rglob("*"):
                if p.is_file():
                    files[str(p)] = p.stat().st_mtime
        return files

    def rebuild(self) -> PreviewFiles:
        self._snapshot = self._watched()
        issue = compose_issue(self.settings, self.folder)
        files = write_preview(self.settings, issue, self.recipient)
        self.version += 1
        self.error = ""
        return files

    def watch(self, interval: float = 0.5) -> None:
        while not self._stop.wait(interval):
            if self._watched() == self._snapshot:
                continue
            try:
                self.files = self.rebuild()
            except MailerError as exc:
                self.error = str(exc)
                self.version += 1

    def start(self) -> None:
        """Serve and watch in background threads (stop with `stop`)."""
        threading.Thread(target=self.watch, daemon=True).start()
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self._stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()

    def serve_forever(self) -> None:
        """Serve in the foreground until interrupted."""
        threading.Thread(target=self.watch, daemon=True).start()
        try:
            self.httpd.serve_forever()
        finally:
            self._stop.set()
            self.httpd.server_close()
