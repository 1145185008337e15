"""The file backend: each message one ``.eml`` file in the outbox folder.

A ``.eml`` file is the message exactly as the SMTP backend would send it
(RFC 5322 bytes, CRLF line ends; STANDARDS A16): Thunderbird, Apple Mail,
Outlook and `email.message_from_bytes` open it. The name is
``<UTC timestamp>-<key>.eml`` so a listing sorts in sending order. Each file is
written to a hidden temporary name, flushed to disk and then linked to its
final name, so a reader never sees half a message and nothing is overwritten.
The envelope (bounce address, recipient) is not part of the file; it is the
message's Return-Path and To.
"""

from __future__ import annotations

import os
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterable

from mailer.backends.base import Backend, BatchResult, OutgoingMessage, DeliveryOutcome, Result
from mailer.errors import DeliveryError

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def eml_name(key: int | str, now: datetime | None = None, attempt: int = 0) -> str:
    """``20261201T120000.123456Z-<key>.eml`` (``-2``, ``-3``... when that name is taken)."""
    now = now or datetime.now(timezone.utc)
    stamp = now.astimezone(timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")
    safe_key = _UNSAFE.sub("_", str(key))[:80] or "_"
    suffix = f"-{attempt + 1}" if attempt else ""
    return f"{stamp}-{safe_key}{suffix}.eml"


class FileBackend(Backend):
    """Writes ``<outbox_dir>/<timestamp>-<key>.eml`` atomically; always reports SENT."""

    name = "file"

    def __init__(self, settings, directory: Path | str | None = None) -> None:  # type: ignore[no-untyped-def]
        super().__init__(settings)
        self.directory = Path(directory) if directory else settings.path(settings.outbox_dir)

    def open(self) -> None:
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DeliveryError(f"outbox folder {self.directory}: cannot create it: {exc.strerror}") from None
        if not os.access(self.directory, os.W_OK):
            raise DeliveryError(f"outbox folder {self.directory}: not writable")

    def send(self, batch: Iterable[OutgoingMessage],
             on_result: Callable[[Result], None] | None = None) -> BatchResult:
        result = super().send(batch, on_result)
        _fsync_dir(self.directory)
        return result

    def send_one(self, message: OutgoingMessage) -> Result:
        try:
            path = self.write(message)
        except OSError as exc:
            # a full disk or a vanished folder: retry later, not the recipient's fault
            return Result(message.key, DeliveryOutcome.TEMPORARY, 0, f"cannot write to {self.directory}: {exc.strerror}")
        return Result(message.key, DeliveryOutcome.SENT, 250, f"2.0.0 written to {path.name}")

    def write(self, message: OutgoingMessage) -> Path:
        """Write one message's bytes, unchanged; return the file's path."""
        tmp = self.directory / f".tmp-{os.getpid()}-{_UNSAFE.sub('_', str(message.key))[:80]}.eml"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(message.data)
                f.flush()
                os.fsync(f.fileno())
            now = datetime.now(timezone.utc)
            for attempt in range(1000):
                path = self.directory / eml_name(message.key, now, attempt)
                try:
                    os.link(tmp, path)   # atomic, and never replaces an existing file
                    break
                except FileExistsError:
                    continue
            else:  # pragma: no cover - a thousand files with one key in one microsecond
                raise FileExistsError(f"no free name for key {message.key}")
        finally:
            tmp.unlink(missing_ok=True)
        return path


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
