"""File and memory backends, and load_backend (STANDARDS A16)."""

from __future__ import annotations

import os
from email import message_from_bytes, policy
from pathlib import Path

import pytest

from mailer.backends import load_backend
from mailer.backends.base import Backend, DeliveryOutcome
from mailer.backends.file import FileBackend
from mailer.backends.memory import MemoryBackend
from mailer.backends.smtp import SMTPBackend
from mailer.config import Settings
from mailer.errors import ConfigError, DeliveryError
from mailer.mail.message import MessageFactory, Recipient
from tests.smtpserver import smtp_server  # noqa: F401


def batch(settings: Settings, n: int, key_prefix: str = ""):  # type: ignore[no-untyped-def]
    factory = MessageFactory(settings, subject="Winter appeal", issue_slug="2026-12",
                             html="<p>Dear __mailer_name__, <a href='__mailer_unsubscribe_url__'>unsubscribe</a></p>",
                             text="Dear __mailer_name__\n.\nUnsubscribe: __mailer_unsubscribe_url__\n")
    return [factory.render(Recipient(f"{key_prefix}{i}" if key_prefix else i, f"r{i}@example.net",
                                     f"Reader {i}", f"uid{i}", "news", "News")) for i in range(n)]


def test_file_backend_writes_one_eml_per_message_in_order(settings):
    s = settings.replace(outbox_dir="outbox")
    messages = batch(s, 5)
    with FileBackend(s) as backend:
        results = backend.send(messages).results
    assert [r.outcome for r in results] == [DeliveryOutcome.SENT] * 5
    files = sorted((s.root / "outbox").glob("*.eml"))
    assert [f.read_bytes() for f in files] == [m.data for m in messages]
    assert [f.name.rsplit("-", 1)[1] for f in files] == [f"{i}.eml" for i in range(5)]
    assert not list((s.root / "outbox").glob(".tmp-*"))          # nothing half-written left behind
    assert [r.reply for r in results] == [f"2.0.0 written to {f.name}" for f in files]


def test_same_key_twice_never_overwrites(settings):
    s = settings.replace(outbox_dir="outbox")
    messages = batch(s, 3, key_prefix="test") + batch(s, 3, key_prefix="test")
    with FileBackend(s) as backend:
        backend.send(messages)
    files = list((s.root / "outbox").glob("*.eml"))
    assert len(files) == 6
    assert sorted(f.read_bytes() for f in files) == sorted(m.data for m in messages)


def test_eml_is_byte_identical_to_smtp_and_round_trips_A16(smtp_server, settings):
    """A16: the .eml equals the bytes the SMTP server received, and parses with no defects."""
    s = smtp_server.settings(settings, outbox_dir="outbox", smtp_connections=1)
    messages = batch(s, 3)
    with FileBackend(s) as files:
        files.send(messages)
    with SMTPBackend(s) as smtp:
        smtp.send(messages)
    written = [p.read_bytes() for p in sorted((s.root / "outbox").glob("*.eml"))]
    assert written == [m.data for m in smtp_server.messages]
    for data in written:
        msg = message_from_bytes(data, policy=policy.default)
        assert all(part.defects == [] for part in msg.walk())
        assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_unwritable_outbox_is_one_clear_line(settings, tmp_path: Path):
    blocker = tmp_path / "file-not-folder"
    blocker.write_text("x")
    with pytest.raises(DeliveryError, match=r"^outbox folder .*file-not-folder/outbox: cannot create it"):
        FileBackend(settings.replace(outbox_dir=str(blocker / "outbox"))).open()


def test_write_failure_mid_batch_is_temporary_not_raised(settings):
    s = settings.replace(outbox_dir="outbox")
    messages = batch(s, 2)
    backend = FileBackend(s)
    backend.open()
    os.rmdir(s.root / "outbox")
    results = backend.send(messages).results
    assert [r.outcome for r in results] == [DeliveryOutcome.TEMPORARY, DeliveryOutcome.TEMPORARY]
    assert "cannot write" in results[0].reply


def test_memory_backend_keeps_messages_and_scripted_outcomes(settings):
    MemoryBackend.reset()
    messages = batch(settings, 3)
    MemoryBackend.outcomes["r1@example.net"] = (DeliveryOutcome.PERMANENT, 550, "5.1.1 user unknown")
    seen = []
    with load_backend(settings, "memory") as backend:
        results = backend.send(messages).results
        assert backend.send(messages[:2], on_result=seen.append).results == []   # reported, not kept
    assert [r.outcome for r in results] == [DeliveryOutcome.SENT, DeliveryOutcome.PERMANENT, DeliveryOutcome.SENT]
    assert seen == results[:2]
    assert [m.recipient for m in MemoryBackend.outbox] == ["r0@example.net", "r2@example.net", "r0@example.net"]
    assert backend.messages == MemoryBackend.outbox
    MemoryBackend.reset()
    assert MemoryBackend.outbox == []


class EchoBackend(Backend):
    """A third-party backend, loaded by module:Class."""

    name = "echo"


def test_load_backend_by_name_module_class_and_errors(settings):
    assert isinstance(load_backend(settings, "smtp"), SMTPBackend)
    assert isinstance(load_backend(settings.replace(backend="file")), FileBackend)
    assert isinstance(load_backend(settings, "tests.test_backends_file:EchoBackend"), EchoBackend)
    with pytest.raises(ConfigError, match=r"^setting 'backend' \('carrier-pigeon'\): unknown backend; use one of"):
        load_backend(settings, "carrier-pigeon")
    with pytest.raises(ConfigError, match="cannot import 'no_such_module'"):
        load_backend(settings, "no_such_module:Backend")
    with pytest.raises(ConfigError, match="is not a mailer.backends.base.Backend subclass"):
        load_backend(settings, "pathlib:Path")


def test_entry_points_declared_for_builtins():
    """Third-party backends use the same `mailer.backends` group as the built-in ones."""
    from importlib.metadata import entry_points

    names = {ep.name: ep.value for ep in entry_points(group="mailer.backends")}
    if not names:
        pytest.skip("mailer is not installed as a package in this environment")
    assert names["smtp"] == "mailer.backends.smtp:SMTPBackend"
    assert names["file"] == "mailer.backends.file:FileBackend"
