"""`mailer bounces`: apply bounce (DSN) and complaint (ARF) reports from files, folders or stdin."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.console import Console

from mailer.people.bounces import Verdict, apply_feedback, parse_report
from mailer.cli import AppContext, pass_app
from mailer.errors import InputError

console = Console(highlight=False, soft_wrap=True)


def _files(paths: tuple[str, ...]) -> list[tuple[str, bytes]]:
    found: list[tuple[str, bytes]] = []
    for raw in paths:
        if raw == "-":
            found.append(("<stdin>", sys.stdin.buffer.read()))
            continue
        path = Path(raw)
        if path.is_dir():
            folders = [path / "new", path / "cur"] if (path / "new").is_dir() else [path]
            files = sorted(p for folder in folders for p in folder.iterdir() if p.is_file())
        elif path.is_file():
            files = [path]
        else:
            raise InputError(f"{raw}: no such file or folder")
        for file in files:
            try:
                found.append((str(file), file.read_bytes()))
            except OSError as exc:
                raise InputError(f"{file}: cannot read: {exc.strerror}") from None
    return found


@click.command("bounces")
@click.argument("paths", nargs=-1, required=True)
@pass_app
def bounces(app: AppContext, paths: tuple[str, ...]) -> None:
    """Apply bounce and complaint reports: .eml files, a Maildir or folder of them, or - for stdin.

    Hard bounces and complaints suppress the address at once; soft bounces
    once they fall on `bounce_soft_limit` distinct days within
    `bounce_soft_window_days`. Pipe your bounce mailbox's delivery into
    `mailer bounces -` to apply them as they arrive.
    """
    counts = {"reports": 0, "not reports": 0, "suppressed": 0, "unknown recipients": 0}
    for name, data in _files(paths):
        feedback = parse_report(app.settings, data)
        if not feedback:
            counts["not reports"] += 1
            console.print(f"{name}: not a bounce or complaint report; skipped")
            continue
        counts["reports"] += 1
        with app.db.session() as session:
            for item in feedback:
                if item.verdict is Verdict.IGNORED:
                    continue
                applied = apply_feedback(session, app.settings, item)
                if not applied.subscriber_found:
                    counts["unknown recipients"] += 1
                    console.print(f"{name}: {item.verdict.value} for an address we do not know; ignored")
                    continue
                counts["suppressed"] += applied.suppressed
                outcome = "suppressed" if applied.suppressed else "recorded"
                console.print(f"{name}: {item.verdict.value} {item.status} for {item.recipient}: {outcome}")
    console.print(", ".join(f"{v} {k}" for k, v in counts.items()))


COMMANDS = [bounces]
