"""Every command, option and setting is documented in the README (STYLE habit 10)."""

from __future__ import annotations

from pathlib import Path

import click
import pytest

from mailer.cli import cli
from mailer.config import SETTING_NAMES, dotted_name, env_name

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")


def walk(group: click.Group, prefix: str = "mailer") -> list[tuple[str, click.Command]]:
    found = []
    for name, command in group.commands.items():
        path = f"{prefix} {name}"
        found.append((path, command))
        if isinstance(command, click.Group):
            found.extend(walk(command, path))
    return found


COMMANDS = walk(cli)


@pytest.mark.parametrize("path, command", COMMANDS, ids=[p for p, _ in COMMANDS])
def test_command_and_its_options_are_in_the_readme(path, command):
    assert f"`{path}" in README or f"{path} " in README, f"README does not show `{path}`"
    for param in command.params:
        if isinstance(param, click.Option):
            for opt in param.opts:
                if opt.startswith("--"):
                    assert opt in README, f"README does not document {opt} of `{path}`"


@pytest.mark.parametrize("name", SETTING_NAMES)
def test_setting_is_in_the_readme(name):
    assert f"`{dotted_name(name)}`" in README or env_name(name) in README, (
        f"README does not document setting {dotted_name(name)} ({env_name(name)})")
