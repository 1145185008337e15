"""Preview files, the preview server, and the compose/preview/new-issue commands."""

from __future__ import annotations

import html
import json
import re
import time
import urllib.request
from email import message_from_bytes, policy
from pathlib import Path

from click.testing import CliRunner

from mailer.cli import cli
from mailer.config import Settings
from mailer.content.compose import compose_issue
from mailer.mail.message import Recipient
from mailer.mail.preview import PreviewServer, write_preview
from mailer.mail.previewpage import dark_copy, without_style


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
        assert "Nameless reader · light · 640 px" in index and "Phone · 390 px · without &lt;style&gt;" in index
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


def test_preview_index_shows_named_and_nameless_light_dark_phone_text_and_warnings(settings, project):
    report = project / "issues/example/reports/03-whats-on.md"
    report.write_text(report.read_text() + "\n\nWe meet at the <picket> & go on to the rally and\n")
    issue = compose_issue(settings, "issues/example")
    files = write_preview(settings, issue)
    names = sorted(p.name for p in files.folder.iterdir())
    assert names == ["archive.html", "index.html", "issue-dark.html", "issue-nameless.html", "issue-nameless.txt",
                     "issue-nostyle.html", "issue.html", "issue.txt", "sample.eml"]
    named, nameless = files.html.read_text(), files.nameless_html.read_text()
    assert "Sam Sample" in named and "Sam Sample" in files.text.read_text()
    for part in (nameless, (files.folder / "issue-nameless.txt").read_text()):
        assert "Sam Sample" not in part and "__mailer_" not in part
    assert "<style" in named and "<style" not in files.nostyle_html.read_text()
    assert files.nostyle_html.read_text() == without_style(named)
    assert files.dark_html.read_text() == dark_copy(named)
    index = files.index.read_text()
    srcs = re.findall(r'<iframe title="([^"]+)" src="([^"]+)" width="(\d+)"', index)
    assert [(s, w) for _, s, w in srcs] == [("issue.html", "640"), ("issue-nameless.html", "640"),
                                          ("issue-dark.html", "640"), ("issue.html", "390"),
                                          ("issue-dark.html", "390"), ("issue-nostyle.html", "390")]
    assert "Named reader (Sam Sample) · light" in index
    assert index.count("<pre>") == 2 and html.escape(files.text.read_text()) in index
    assert issue.warnings and all(html.escape(w) in index for w in issue.warnings)
    assert index.index("<iframe") < index.index("Compose warnings and lint") < index.index(
        html.escape(issue.warnings[0]))


def test_preview_as_a_subscriber_names_them_and_still_renders_nameless(settings):
    issue = compose_issue(settings, "issues/example")
    rosa = Recipient(key="p", email="rosa@example.org", name="Rosa Parks", subscriber_uid="u1", list_slug="news",
                     list_name="News")
    files = write_preview(settings, issue, rosa)
    assert "Rosa Parks" in files.html.read_text() and "Rosa Parks" not in files.nameless_html.read_text()
    assert "Named reader (Rosa Parks)" in files.index.read_text()
    assert (files.folder / ".personalised.json").exists()


def test_dark_copy_turns_dark_rules_on_and_light_only_off() -> None:
    mail = ('<html><head><meta name="color-scheme" content="light dark"><style>'
            '@media (prefers-color-scheme: dark) { .b { color: #eee } }'
            '@media (prefers-color-scheme:light) and (max-width: 600px) { .c { color: #111 } }</style>'
            '</head><body><style>p{}</style><p class="b" style="color:#111">x</p></body></html>')
    dark = dark_copy(mail)
    assert "prefers-color-scheme" not in dark
    assert "@media (min-width: 0px) { .b" in dark and "@media (max-width: 0px) and (max-width: 600px)" in dark
    assert '<meta name="color-scheme" content="dark">' in dark
    assert without_style(mail) == ('<html><head><meta name="color-scheme" content="light dark"></head>'
                                   '<body><p class="b" style="color:#111">x</p></body></html>')


def test_a_failing_render_writes_nothing_and_keeps_the_old_preview(settings, project, monkeypatch):
    """Nothing half-written: an error while the files are written leaves build/ as it was."""
    import mailer.mail.preview as preview

    issue = compose_issue(settings, "issues/example")
    write_preview(settings, issue)
    before = sorted((project / "build").rglob("*"))
    monkeypatch.setattr(preview, "dark_copy", lambda html: 1 / 0)
    try:
        write_preview(settings, issue)
    except ZeroDivisionError:
        pass
    assert sorted((project / "build").rglob("*")) == before
