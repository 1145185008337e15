"""Preview files, the preview server, and the compose/preview/new-issue commands."""

from __future__ import annotations

import json
import time
import urllib.request
from email import message_from_bytes, policy
from pathlib import Path

from click.testing import CliRunner

from mailer.cli import cli
from mailer.config import Settings
from mailer.content.compose import compose_issue
from mailer.mail.preview import PreviewServer, write_preview


def run(project: Path, *args: str, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(cli, ["--root", str(project), *args], env=env or {}, catch_exceptions=False)


def test_preview_writes_html_text_and_a_sample_eml_a_mail_client_opens(settings):
    """STANDARDS A4, A12, A16: multipart/alternative, text first, CRLF, no defects."""
    files = write_preview(settings, compose_issue(settings, "issues/example"))
    data = files.eml.read_bytes()
    assert b"\r\n" in data and b"\n" not in data.replace(b"\r\n", b"")
    message = message_from_bytes(data, policy=policy.default)
    assert message.defects == [] and all(not p.defects for p in message.walk())
    assert message.get_content_type() == "multipart/alternative"
    parts = [p.get_content_type() for p in message.iter_parts()]
    assert parts == ["text/plain", "text/html"]
    assert "Dear Sam Sample," in files.html.read_text() and "Dear Sam Sample," in files.text.read_text()
    assert "__mailer_" not in files.html.read_text()
    assert "/u/" in files.text.read_text()
    assert (files.folder / "archive.html").exists() and "Text part" in files.index.read_text()


def test_cli_compose_and_preview(project):
    result = run(project, "compose", "issues/example")
    assert result.exit_code == 0, result.output
    assert "ok: example composes (3 reports)" in result.output
    result = run(project, "preview", "issues/example")
    assert result.exit_code == 0, result.output
    assert (project / "build/example/sample.eml").exists()


def test_cli_bad_issue_is_one_line_and_writes_nothing(project):
    (project / "issues/example/issue.toml").write_text('subject = "unterminated\n')
    result = run(project, "preview", "issues/example")
    assert result.exit_code == 2
    assert result.output.startswith("error: ") and "issue.toml: invalid TOML" in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not (project / "build").exists()


def test_failed_rebuild_keeps_the_previous_preview(project, settings):
    write_preview(settings, compose_issue(settings, "issues/example"))
    before = (project / "build/example/issue.html").read_text()
    (project / "issues/example/reports/03-whats-on.md").write_bytes(b"\xff\xfe broken")
    result = run(project, "preview", "issues/example")
    assert result.exit_code == 2 and "03-whats-on.md:1: not UTF-8" in result.output
    assert (project / "build/example/issue.html").read_text() == before
    assert [p.name for p in (project / "build").iterdir()] == ["example"]


def test_new_issue_scaffolds_a_folder_that_composes(project):
    result = run(project, "new-issue", "January: rent strike", "--slug", "2027-01-rent")
    assert result.exit_code == 0, result.output
    assert (project / "issues/2027-01-rent/issue.toml").exists()
    assert run(project, "compose", "issues/2027-01-rent").exit_code == 0
    again = run(project, "new-issue", "January: rent strike", "--slug", "2027-01-rent")
    assert again.exit_code == 2 and "already exists" in again.output


def test_new_issue_example_copies_the_shipped_example_with_the_title(tmp_path):
    """An empty folder (no issues/example there): --example copies the one mailer ships."""
    title = 'Say "no" to C:\\evictions'
    result = run(tmp_path, "new-issue", title, "--slug", "try", "--example")
    assert result.exit_code == 0, result.output
    folder = tmp_path / "issues/try"
    shipped = Path(__file__).resolve().parent.parent / "issues/example"
    assert sorted(p.name for p in (folder / "reports").iterdir()) == sorted(
        p.name for p in (shipped / "reports").iterdir())
    assert (folder / "reports/02-bakery-appeal.txt").read_bytes() == (
        shipped / "reports/02-bakery-appeal.txt").read_bytes()
    issue = compose_issue(Settings(root=tmp_path), "issues/try")
    assert issue.subject == title and len(issue.reports) == 3
    assert [p.name for p in (tmp_path / "issues").iterdir()] == ["try"]   # no staging folder left


def test_new_issue_quotes_the_title_as_toml(tmp_path):
    title = 'Back\\slash "quoted" title'
    assert run(tmp_path, "new-issue", title, "--slug", "quoted").exit_code == 0
    assert compose_issue(Settings(root=tmp_path), "issues/quoted").subject == title


def test_preview_server_serves_and_rebuilds_when_a_report_changes(settings, project):
    server = PreviewServer(settings, "issues/example", port=0)
    server.start()
    try:
        index = urllib.request.urlopen(server.address, timeout=5).read().decode()
        assert "Desktop (640 px)" in index and "Phone (375 px)" in index
        issue = urllib.request.urlopen(server.address + "issue.html", timeout=5).read().decode()
        assert "Branch meeting, 18 November" in issue
        status = json.loads(urllib.request.urlopen(server.address + "__status", timeout=5).read())
        report = project / "issues/example/reports/03-whats-on.md"
        report.write_text(report.read_text().replace("What's on", "Dates for your diary"))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            now = json.loads(urllib.request.urlopen(server.address + "__status", timeout=5).read())
            if now["version"] != status["version"]:
                break
            time.sleep(0.2)
        issue = urllib.request.urlopen(server.address + "issue.html", timeout=5).read().decode()
        assert "Dates for your diary" in issue
        report.write_text("---\nbroken: yes\n---\n")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            now = json.loads(urllib.request.urlopen(server.address + "__status", timeout=5).read())
            if now["error"]:
                break
            time.sleep(0.2)
        assert "unknown front matter key 'broken'" in now["error"]
    finally:
        server.stop()
