"""Issue 15, content faults: reports from outside the issue folder, links the sanitiser removed,
and previews personalised for someone who is then erased."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner, Result

from mailer.cli import cli
from mailer.db import Database
from tests.helpers import TEST_ENV

TOML = 'subject = "Faults"\nlists = ["news"]\n'
GOOD = "# Fine\n\nA report that reads well.\n"


def mailer(project: Path, *args: str, db_url: str = "") -> Result:
    env = {**TEST_ENV, "MAILER_ROOT": str(project)}
    if db_url:
        env["MAILER_DATABASE_URL"] = db_url
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


def issue(project: Path, toml: str = TOML, reports: dict[str, str] | None = None) -> Path:
    folder = project / "issues" / "faults"
    (folder / "reports").mkdir(parents=True)
    (folder / "issue.toml").write_text(toml, encoding="utf-8")
    for name, text in (reports if reports is not None else {"01-fine.md": GOOD}).items():
        (folder / "reports" / name).write_text(text, encoding="utf-8")
    return folder


def refused(result: Result, *needles: str) -> str:
    """The command failed with one `error:` line holding every needle."""
    assert result.exit_code != 0, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert all(n in lines[0] for n in needles), lines[0]
    return lines[0]


def secret_outside(tmp_path: Path) -> Path:
    secret = tmp_path / "elsewhere" / "private.md"
    secret.parent.mkdir()
    secret.write_text("# Private\n\nSALARY-LIST-NOT-FOR-PUBLICATION.\n", encoding="utf-8")
    return secret


def test_a_report_symlinked_outside_the_issue_is_refused_and_nothing_is_composed(project, tmp_path):
    folder = issue(project)
    (folder / "reports" / "02-leak.md").symlink_to(secret_outside(tmp_path))
    line = refused(mailer(project, "compose", "issues/faults"), "02-leak.md", "symbolic link",
                   "outside the issue folder")
    assert "SALARY" not in line
    refused(mailer(project, "preview", "issues/faults"), "02-leak.md")
    assert not (project / "build").exists()


def test_a_reports_entry_that_climbs_out_of_the_folder_is_refused(project, tmp_path):
    secret_outside(tmp_path)
    escape = "../" * 4 + "elsewhere/private.md"  # project/issues/faults/reports -> tmp_path
    assert (project / "issues/faults/reports" / escape).resolve() == tmp_path / "elsewhere/private.md"
    issue(project, TOML + f'reports = ["01-fine.md", "{escape}"]\n')
    refused(mailer(project, "compose", "issues/faults"), "private.md", "outside the issue folder")


def test_a_reports_folder_that_is_a_symlink_out_is_refused(project, tmp_path):
    secret_outside(tmp_path)
    folder = project / "issues" / "faults"
    folder.mkdir(parents=True)
    (folder / "issue.toml").write_text(TOML, encoding="utf-8")
    (folder / "reports").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    refused(mailer(project, "compose", "issues/faults"), "private.md", "symbolic link")


def test_a_symlink_that_stays_inside_the_issue_folder_is_allowed(project):
    folder = issue(project, reports={})
    (folder / "drafts").mkdir()
    (folder / "drafts" / "a.md").write_text(GOOD, encoding="utf-8")
    (folder / "reports" / "01-a.md").symlink_to(Path("..") / "drafts" / "a.md")
    result = mailer(project, "compose", "issues/faults")
    assert result.exit_code == 0 and "composes (1 reports)" in result.output, result.output


def test_a_javascript_link_is_named_as_removed_not_as_an_empty_link(project):
    issue(project, reports={"01-click.md": "# Click\n\nPlease [click](javascript:alert(1)) now.\n"})
    line = refused(mailer(project, "compose", "issues/faults"))
    assert line == ("error: 01-click.md: a link to 'javascript:alert(1)' was removed "
                    "(only http(s) and mailto links are kept); fix or delete it")


def test_removed_raw_html_link_and_data_image_are_named_too(project):
    issue(project, reports={"01-raw.md": '# Raw\n\n<a href="ftp://files.example.org/x">files</a> '
                                         "![logo](data:image/png;base64,AAAA).\n"})
    result = mailer(project, "compose", "issues/faults")
    assert result.exit_code != 0
    assert "01-raw.md: a link to 'ftp://files.example.org/x' was removed" in result.output
    assert "01-raw.md: an image from 'data:image/png;base64,AAAA' was removed" in result.output
    assert "link ''" not in result.output and "image ''" not in result.output


def build_bytes(project: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted((project / "build").rglob("*")) if p.is_file())


def test_erasure_deletes_previews_made_as_that_person_and_keeps_the_others(project, settings, caplog):
    database = Database(settings.resolved_database_url)
    database.upgrade()
    database.dispose()
    url = settings.resolved_database_url
    issue(project)
    assert mailer(project, "lists", "add", "news", "News", db_url=url).exit_code == 0
    for email in ("zelie.q@example.org", "other.person@example.org"):
        assert mailer(project, "subscribers", "add", email, "--list", "news", "--confirmed",
                      db_url=url).exit_code == 0
    made = mailer(project, "preview", "issues/faults", "--as", "zelie.q@example.org", db_url=url)
    assert made.exit_code == 0, made.output
    assert b"zelie.q@example.org" in build_bytes(project)
    marker = (project / "build/faults/.personalised.json").read_text()
    assert "zelie" not in marker.lower()
    assert mailer(project, "preview", "issues/example", "--as", "other.person@example.org",
                  db_url=url).exit_code == 0

    erased = mailer(project, "subscribers", "erase", "Zelie.Q@example.org", "--yes", db_url=url)
    assert erased.exit_code == 0, erased.output
    said = [r.getMessage() for r in caplog.records if r.name == "mailer.mail.preview"]
    assert len(said) == 1 and "erasure: deleted 1 preview folder(s)" in said[0]
    assert b"zelie" not in build_bytes(project).lower()
    assert not (project / "build/faults").exists()
    assert b"other.person@example.org" in (project / "build/example/sample.eml").read_bytes()
