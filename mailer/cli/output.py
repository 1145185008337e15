"""Terminal output for commands: plain aligned tables and a rich console built on first use.

rich costs ~50 ms of start-up (bench/cli_bench.py), so the quick read-only commands (`lists`,
`status`, `schedule list`) print plain tables, and the others get their rich console lazily.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

import click

if TYPE_CHECKING:
    from rich.console import Console


def format_table(headers: Sequence[str], rows: Sequence[Sequence[str]], indent: str = "") -> str:
    """Columns padded to their widest cell, a rule under the header; the last column is not padded."""
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]

    def line(cells: Sequence[str]) -> str:
        padded = [str(c).ljust(w) for c, w in zip(cells[:-1], widths)] + [str(cells[-1])]
        return (indent + "  ".join(padded)).rstrip()

    rule = indent + "  ".join("-" * w for w in widths)
    return "\n".join([line(headers), rule, *(line(r) for r in rows)])


def print_warnings(warnings: Sequence[str], err: bool = False) -> None:
    """Compose's warnings, one line each; every command that composes repeats them."""
    for warning in warnings:
        click.echo(click.style("warning:", fg="yellow") + f" {warning}", err=err)


def print_table(headers: Sequence[str], rows: Sequence[Sequence[str]], indent: str = "") -> None:
    click.echo(format_table(headers, rows, indent))


class LazyConsole:
    """A rich Console made at its first use, with the keyword arguments given here."""

    def __init__(self, **options: Any) -> None:
        self._options = options
        self._console: Console | None = None

    def __getattr__(self, name: str) -> Any:
        if self._console is None:
            from rich.console import Console

            self._console = Console(**self._options)
        return getattr(self._console, name)
