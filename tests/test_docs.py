"""Every command, option and setting is documented in the README (STYLE habit 10).

An option counts as documented only in the README section of its own command: the top-level
bullet (with its indented sub-bullets) that names the command, e.g. "- `mailer send ...`".
"""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest

from mailer.cli import cli
from mailer.config import SETTING_NAMES, dotted_name, env_name

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")


def walk(group: click.Group, prefix: str = "mailer") -> list[tuple[str, click.Command]]:
    """Every command under *group*, loaded through the group as the CLI would (lazily)."""
    ctx = click.Context(group, info_name=prefix)
    found = []
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None, f"{prefix} {name} is listed but cannot be loaded"
        path = f"{prefix} {name}"
        found.append((path, command))
        if isinstance(command, click.Group):
            found.extend(walk(command, path))
    return found


def bullets(text: str) -> list[str]:
    """The top-level bullets of *text*, each with its indented continuation and sub-bullets."""
    blocks: list[str] = []
    current: list[str] | None = None
    for line in text.splitlines():
        if line.startswith("- "):
            current = [line]
            blocks.append("")
        elif current is not None and (line.startswith(" ") or not line.strip()):
            current.append(line)
        else:
            current = None
            continue
        blocks[-1] = "\n".join(current)
    return blocks


def section(path: str, command: click.Command) -> str:
    """The README bullets that name `path` itself (not only one of its subcommands)."""
    subcommands = set(command.commands) if isinstance(command, click.Group) else set()
    mention = re.compile(re.escape(f"`{path}") + r"(`|\s+(\S+))")
    return "\n".join(block for block in bullets(README)
                     if any(m.group(2) not in subcommands for m in mention.finditer(block)))


COMMANDS = walk(cli)


def test_the_walk_finds_every_command():
    assert {"mailer send", "mailer schedule list", "mailer subscribers import", "mailer db upgrade"} <= {
        path for path, _ in COMMANDS}


@pytest.mark.parametrize("path, command", COMMANDS, ids=[p for p, _ in COMMANDS])
def test_command_and_its_options_are_in_its_readme_section(path, command):
    assert f"`{path}" in README or f"{path} " in README, f"README does not show `{path}`"
    options = [opt for param in command.params if isinstance(param, click.Option)
               for opt in param.opts + param.secondary_opts if opt.startswith("--")]
    text = section(path, command)
    assert text or not options, f"README has no bullet for `{path}`, which has options {options}"
    for opt in options:
        assert opt in text, f"README's section of `{path}` does not document {opt}"


@pytest.mark.parametrize("name", SETTING_NAMES)
def test_setting_is_in_the_readme(name):
    assert f"`{dotted_name(name)}`" in README or env_name(name) in README, (
        f"README does not document setting {dotted_name(name)} ({env_name(name)})")
