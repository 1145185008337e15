"""Mailboxes that mail arrives in: a Maildir, an mbox, a folder of .eml files, one file, standard
input, or a POP3 or IMAP account over verified TLS. One reader for every kind (`open_mailbox`).

A mailbox yields `Letter`s (a name to show, the Message-ID, the bytes on demand) and is told
which ones are done, so each kind puts processed mail away its own way: a Maildir moves the file
to cur/ with the seen flag (S), IMAP flags it \\Seen and, given a done folder, moves it there, POP3
deletes it (at QUIT, after the caller committed it). Files, mbox and stdin are left as they are.
Every failure to reach or read a mailbox is one MailboxError line. POP3 and IMAP live in
mailer.people.mailremote, imported only for a URL. The floor only.
"""

from __future__ import annotations

import hashlib
import mailbox as stdmailbox
import os
import sys
from dataclasses import dataclass, field
from email.parser import BytesHeaderParser
from pathlib import Path
from typing import Any, Callable, Iterator

from mailer.errors import ConfigError, InputError, MailboxError
from mailer.settingrules import mailbox as check_mailbox


@dataclass
class Letter:
    """One mail of a mailbox; `read()` gives its bytes (fetched on first use for POP3 and IMAP)."""

    name: str
    message_id: str
    handle: Any = None
    fetch: Callable[[], bytes] | None = field(default=None, repr=False)
    data: bytes | None = field(default=None, repr=False)

    def read(self) -> bytes:
        if self.data is None:
            self.data = self.fetch() if self.fetch else b""
        return self.data

    @property
    def key(self) -> str:
        """What the mail is remembered by: its Message-ID, else a hash of its bytes."""
        if self.message_id and len(self.message_id) <= 255:
            return self.message_id
        return "sha256:" + hashlib.sha256(self.message_id.encode() or self.read()).hexdigest()


def message_id_of(data: bytes) -> str:
    """The Message-ID header of *data*, whitespace removed, or ``""``."""
    headers = BytesHeaderParser().parsebytes(data)
    return "".join(str(headers.get("Message-ID", "")).split())


def _local(name: str, data: bytes, handle: Any = None) -> Letter:
    return Letter(name, message_id_of(data), handle, data=data)


class Mailbox:
    """The interface: a context manager yielding letters; `done` puts one away."""

    label = ""

    def __enter__(self) -> "Mailbox":
        self.open()
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        self.close(commit=kind is None)

    def open(self) -> None:
        pass

    def letters(self) -> Iterator[Letter]:
        raise NotImplementedError

    def done(self, letter: Letter) -> None:
        """Put a processed letter away (the default: leave it where it is)."""

    def close(self, commit: bool) -> None:
        pass


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise MailboxError(f"{path}: cannot read: {exc.strerror}") from None


class Files(Mailbox):
    """One .eml file, or every file of a folder, left in place."""

    def __init__(self, path: Path) -> None:
        self.path, self.label = path, str(path)

    def letters(self) -> Iterator[Letter]:
        files = sorted(p for p in self.path.iterdir() if p.is_file()) if self.path.is_dir() else [self.path]
        for file in files:
            yield _local(str(file), _read(file))


class Stdin(Mailbox):
    label = "<stdin>"

    def letters(self) -> Iterator[Letter]:
        yield _local("<stdin>", sys.stdin.buffer.read())


class Mbox(Mailbox):
    """An mbox file, read without changing it (processed mails are remembered, not marked)."""

    def __init__(self, path: Path) -> None:
        self.path, self.label = path, str(path)

    def letters(self) -> Iterator[Letter]:
        try:
            box = stdmailbox.mbox(self.path, create=False)
            keys = box.keys()
        except (OSError, stdmailbox.Error) as exc:
            raise MailboxError(f"{self.path}: cannot read as an mbox: {exc}") from None
        for number, key in enumerate(keys, 1):
            yield _local(f"{self.path}#{number}", box.get_bytes(key))


class Maildir(Mailbox):
    """A Maildir: new/ and cur/ are read; a processed mail moves to cur/ with the S (seen) flag."""

    def __init__(self, path: Path) -> None:
        self.path, self.label = path, str(path)

    def letters(self) -> Iterator[Letter]:
        files = []
        for sub in ("new", "cur"):    # both listed first: what we move to cur/ is not read again
            try:
                names = sorted(os.listdir(self.path / sub))
            except OSError as exc:
                raise MailboxError(f"{self.path / sub}: cannot read: {exc.strerror}") from None
            files += [self.path / sub / name for name in names if not name.startswith(".")]
        for file in files:
            try:
                if not file.is_file():
                    continue
                data = file.read_bytes()
            except FileNotFoundError:        # another reader moved it meanwhile
                continue
            except OSError as exc:
                raise MailboxError(f"{file}: cannot read: {exc.strerror}") from None
            yield _local(str(file), data, file)

    def done(self, letter: Letter) -> None:
        file: Path = letter.handle
        base, _, flags = file.name.partition(":2,")
        if file.parent.name == "cur" and "S" in flags:
            return
        target = self.path / "cur" / f"{base}:2,{''.join(sorted(set(flags) | {'S'}))}"
        try:
            os.rename(file, target)
        except FileNotFoundError:
            pass                              # moved by someone else: nothing to put away
        except OSError as exc:
            raise MailboxError(f"{file}: cannot move to cur/: {exc.strerror}") from None


def open_mailbox(where: str, *, password: str = "", ca_file: str = "", done_folder: str = "",
                 section: str = "bounces") -> Mailbox:
    """The mailbox at *where*: ``-`` (stdin), a path (Maildir, mbox, folder, file) or a mailbox URL.
    *section* (``bounces``, ``submissions``) names the settings its errors point to."""
    if where == "-":
        return Stdin()
    if "://" in where:
        try:
            check_mailbox(f"{section}.mailbox", where)
        except ConfigError as exc:
            raise MailboxError(str(exc).replace(f"setting '{section}.mailbox': ", f"{where}: ")) from None
        from mailer.people.mailremote import Account, Imap, Pop3

        account = Account.parse(where)
        if account.scheme.startswith("pop3"):
            return Pop3(account, password, ca_file, section)
        return Imap(account, password, ca_file, done_folder, section)
    path = Path(where).expanduser()
    if path.is_dir():
        return Maildir(path) if (path / "new").is_dir() and (path / "cur").is_dir() else Files(path)
    if path.is_file():
        try:
            with open(path, "rb") as file:
                start = file.read(5)
        except OSError as exc:
            raise MailboxError(f"{path}: cannot read: {exc.strerror}") from None
        return Mbox(path) if start == b"From " else Files(path)
    raise InputError(f"{where}: no such file or folder")
