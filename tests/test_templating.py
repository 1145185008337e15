"""The one template environment factory: one search path, sandboxed for every kind, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from jinja2.sandbox import SandboxedEnvironment, SecurityError

from mailer.cli import cli
from mailer.config import Settings
from mailer.content.folders import find_template_file, search_path
from mailer.content.templating import Kind, environment, mail_environment
from tests.helpers import TEST_ENV


def test_every_kind_is_sandboxed_on_one_search_path(settings: Settings, project: Path) -> None:
    own = project / "own"
    settings = settings.replace(templates_path=("own", "templates"))
    for kind in Kind:
        env = environment(settings, kind)
        assert isinstance(env, SandboxedEnvironment)
        assert env.loader.searchpath == search_path(settings)  # type: ignore[union-attr]
        with pytest.raises(SecurityError, match="'__class__' of 'str' object is unsafe"):
            env.from_string("{{ ''.__class__.__mro__ }}").render()
    assert search_path(settings)[0] == str(own)
    assert mail_environment(settings) is mail_environment(settings)   # compiled once per search path
    assert find_template_file(settings, "web/site.css") == project / "templates" / "web" / "site.css"


def test_pages_escape_by_suffix_and_mail_text_does_not(settings: Settings) -> None:
    page, mail = environment(settings, Kind.PAGE), mail_environment(settings)
    assert page.from_string("{{ x }}").render(x="<b>") == "&lt;b&gt;"
    assert mail.from_string("{{ x }}").render(x="<b>") == "<b>"


def test_compose_with_a_template_that_is_not_utf8_is_one_line_naming_the_file(project: Path) -> None:
    """`mailer compose`: the base template (reached through `extends`) saved as Latin-1."""
    base = project / "templates" / "base.html"
    base.write_bytes(base.read_bytes().replace(b"<head>", "<head><!-- café -->".encode("latin-1"), 1))
    result = CliRunner().invoke(cli, ["--root", str(project), "compose", "issues/example"], env=TEST_ENV)
    assert result.exit_code == 2, result.output
    assert result.output.startswith("error: ") and result.output.count("\n") == 1, result.output
    assert f"{base}: template is not utf-8 text (byte 0xe9 at offset" in result.output
    assert "Traceback" not in result.output


def test_a_folder_without_templates_renders_with_the_shipped_ones(tmp_path: Path) -> None:
    """In a checkout (and an editable install) the shipped templates are the repository's own."""
    from mailer import shipped

    repo = Path(__file__).resolve().parent.parent
    assert (shipped.TEMPLATES, shipped.EXAMPLE_ISSUE) == (repo / "templates", repo / "issues" / "example")
    settings = Settings(root=tmp_path)
    assert search_path(settings) == [str(tmp_path / "templates"), str(repo / "templates")]
    assert find_template_file(settings, "web/site.css") == repo / "templates" / "web" / "site.css"
