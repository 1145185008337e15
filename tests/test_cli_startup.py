"""`mailer` answers at once: help imports no command module, heavy libraries load only when used.

Each check runs in a fresh interpreter (sys.modules of the test process already holds everything)
and looks at which modules that interpreter imported.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import click
from click.testing import CliRunner

from mailer.cli import LAZY_COMMANDS, cli
from tests.conftest import REPO
from tests.helpers import TEST_ENV

HEAVY = ("sqlalchemy", "premailer", "cssutils", "requests", "dkim", "dns", "flask", "apscheduler",
         "email_validator", "alembic")

RUN_CLI = """
import json, sys
from mailer.cli import cli
code = 0
try:
    cli.main(args=sys.argv[1:], prog_name="mailer")
except SystemExit as exc:
    code = exc.code
print(json.dumps({"code": code, "modules": sorted(sys.modules)}))
"""


def imported_by(*args: str, cwd: Path = REPO, env: dict[str, str] | None = None) -> tuple[int, set[str]]:
    """Run the CLI with *args* in a fresh interpreter; its exit code and top-level packages imported."""
    environment = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    done = subprocess.run([sys.executable, "-c", RUN_CLI, *args], cwd=cwd, env=environment,
                          capture_output=True, text=True, check=True, timeout=120)
    report = json.loads(done.stdout.splitlines()[-1])
    return report["code"], {name.split(".")[0] for name in report["modules"]} | set(report["modules"])


def imports_of(code: str) -> set[str]:
    done = subprocess.run([sys.executable, "-c", f"{code}\nimport sys; print(' '.join(sorted(sys.modules)))"],
                          cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
                          capture_output=True, text=True, check=True, timeout=120)
    return set(done.stdout.split())


def test_help_imports_no_command_module_and_no_heavy_library():
    code, modules = imported_by("--help")
    assert code == 0
    assert [m for m in HEAVY if m in modules] == []
    assert [m for m in modules if m.startswith("mailer.cli.")] == []


def test_help_lists_every_command_with_the_short_help_of_its_docstring():
    lazy_help = CliRunner().invoke(cli, ["--help"]).output
    ctx = click.Context(cli)
    for name in LAZY_COMMANDS:
        command = cli.get_command(ctx, name)
        assert command is not None and command.name == name
        assert (command.help or "").split("\n\n")[0].replace("\n", " ") == LAZY_COMMANDS[name][1], name
        assert f"  {name} " in lazy_help
    # now every command is loaded: the help is the same text click writes from the commands
    assert CliRunner().invoke(cli, ["--help"]).output == lazy_help


def test_compose_module_does_not_import_premailer_until_something_is_inlined():
    assert "premailer" not in imports_of("import mailer.content.compose, mailer.content.inline")
    assert {"premailer", "cssutils"} <= imports_of(
        "from mailer.content.inline import inline_css\ninline_css('<style>p{color:red}</style><p>x</p>')")


def test_compose_of_the_example_inlines_and_so_imports_premailer_but_no_database(project: Path):
    env = {**TEST_ENV, "MAILER_ROOT": str(project)}
    code, modules = imported_by("compose", "issues/example", cwd=project, env=env)
    assert code == 0
    assert "premailer" in modules
    assert [m for m in ("sqlalchemy", "flask", "apscheduler", "dkim") if m in modules] == []


def test_read_only_commands_load_the_database_but_no_renderer_or_rich(project: Path):
    """`lists`, `status`, `schedule list` and `report` need SQLAlchemy only: no Jinja, Markdown, premailer or rich."""
    env = {**TEST_ENV, "MAILER_ROOT": str(project)}
    assert imported_by("db", "upgrade", cwd=project, env=env)[0] == 0
    for args in (["lists"], ["status", "issues/example"], ["schedule", "list"]):
        code, modules = imported_by(*args, cwd=project, env=env)
        assert code == 0, args
        assert "sqlalchemy" in modules, args
        assert [m for m in ("jinja2", "markdown_it", "premailer", "lxml", "rich", "flask", "dkim")
                if m in modules] == [], args
    code, modules = imported_by("report", "issues/example", cwd=project, env=env)   # never sent: exit 1
    assert code == 1 and "sqlalchemy" in modules
    assert [m for m in ("jinja2", "markdown_it", "premailer", "lxml", "rich", "flask", "dkim") if m in modules] == []
