"""Composing an issue: templates, inlining, placeholders, lint, bad input."""

from __future__ import annotations

import quopri
import re
import socket

import pytest

from mailer.content.compose import compose_issue
from mailer.errors import ComposeError
from mailer.content.personalize import escape_html, greeting, keep, placeholder
from mailer.mail.mime import QPTemplate
from tests.helpers import make_issue

EXAMPLE = "issues/example"


def test_example_issue_composes_with_sections_toc_and_footer(settings):
    issue = compose_issue(settings, EXAMPLE)
    assert issue.report_count == 3 and issue.lists == ("news",)
    for title in ("Branch meeting, 18 November", "A message from the Miller’s bakery strikers", "What’s on"):
        assert title in issue.html.replace("&#8217;", "’") or title.replace("’", "'") in issue.html
    assert "In this issue" in issue.html and "IN THIS ISSUE" in issue.text
    assert settings.group_address in issue.html and settings.group_address in issue.text
    assert issue.warnings == ()


def test_css_is_inlined_and_media_query_keeps_important(settings):
    """STANDARDS H1: @media stays in a <style> block with its !important."""
    html = compose_issue(settings, EXAMPLE).html
    assert re.search(r'<td class="masthead" style=["\']background-color:#b3261e', html)
    styles = re.findall(r"<style[^>]*>(.*?)</style>", html, flags=re.DOTALL)
    assert any("@media" in s and "!important" in s for s in styles)
    outside_media = [re.sub(r"@media[^{]*\{(?:[^{}]*\{[^{}]*\})*[^{}]*\}", "", s) for s in styles]
    assert not any(".masthead" in s for s in outside_media), "inlined rules should leave the <style> block"


def test_placeholders_survive_premailer_inside_href(settings):
    """STANDARDS H2: the personalisation markers come out of inlining intact in href attributes."""
    issue = compose_issue(settings, EXAMPLE)
    for key in ("unsubscribe_url", "preferences_url", "view_online_url"):
        assert f'href="{placeholder(key)}"' in issue.html
        assert placeholder(key) in issue.text or key == "view_online_url"
    assert "{{" not in issue.html and "%7B" not in issue.html


def test_personalisation_escapes_for_html_and_keeps_text_raw(settings):
    issue = compose_issue(settings, EXAMPLE)
    name = 'Ana <b>"&" co</b>'
    values = {"name": name, "greeting": greeting(name, settings.greeting, settings.greeting_nameless),
              "email": "ana@example.org", "unsubscribe_url": "https://news.example.org/u/abc?x=1&y=2",
              "preferences_url": "https://news.example.org/p/abc", "view_online_url": "https://v"}
    html = quopri.decodestring(QPTemplate(issue.html, escape_html).fill(values)).decode()
    text = quopri.decodestring(QPTemplate(issue.text, keep).fill(values)).decode()
    assert "Dear Ana &lt;b&gt;&quot;&amp;&quot; co&lt;/b&gt;," in html
    assert 'href="https://news.example.org/u/abc?x=1&amp;y=2"' in html
    assert "__mailer_" not in html and "__mailer_" not in text
    assert 'Dear Ana <b>"&" co</b>,' in text
    assert "Unsubscribe: https://news.example.org/u/abc?x=1&y=2" in text


def test_text_part_is_wrapped_at_72_with_links_as_footnotes(settings):
    text = compose_issue(settings, EXAMPLE).text
    long_lines = [line for line in text.splitlines() if len(line) > 72 and "__mailer_" not in line
                  and "://" not in line]
    assert long_lines == []
    assert "[1] https://tenants.example.org/eastfield-survey" in text


def test_archive_version_holds_no_personal_placeholders(settings):
    issue = compose_issue(settings, EXAMPLE)
    assert "__mailer_" not in issue.archive_html and "Dear " not in issue.archive_html
    assert "Branch meeting, 18 November" in issue.archive_html


def test_title_with_script_renders_as_text_and_subject_is_not_escaped(settings, project):
    """STANDARDS D2: autoescaped HTML; the subject and text part are not HTML-escaped."""
    make_issue(project, "t", {"a.md": "---\ntitle: <script>alert(1)</script> & more\n---\n\nBody text.\n"},
               toml='subject = "Tips & tricks"\n')
    issue = compose_issue(settings, "issues/t")
    assert issue.subject == "Tips & tricks"
    assert "<script>alert(1)</script>" not in issue.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; more" in issue.html
    assert "<script>alert(1)</script> & more" in issue.text


def test_inliner_opens_no_socket_for_external_stylesheets(settings, project):
    """STANDARDS D3: a <link rel=stylesheet> to a listening port gets no connection."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.settimeout(0.5)
    port = listener.getsockname()[1]
    tpl = project / "templates"
    base = (tpl / "base.html").read_text()
    (tpl / "base.html").write_text(base.replace(
        "<style>", f'<link rel="stylesheet" href="http://127.0.0.1:{port}/x.css">\n<style>', 1))
    issue = compose_issue(settings, EXAMPLE)
    with pytest.raises(socket.timeout):
        listener.accept()
    listener.close()
    assert f"127.0.0.1:{port}" not in issue.html
    assert any("external stylesheet" in w for w in issue.warnings)


def test_group_templates_override_by_name(settings, project):
    own = project / "our-templates"
    own.mkdir()
    issue_tpl = (project / "templates" / "issue.html").read_text()
    (own / "issue.html").write_text(issue_tpl.replace("In this issue", "Inside this edition"))
    issue = compose_issue(settings.replace(templates_path=("our-templates", "templates")), EXAMPLE)
    assert "Inside this edition" in issue.html and "In this issue" not in issue.html


def test_strict_undefined_names_template_and_line(settings, project):
    (project / "templates" / "issue.html").write_text(
        '{% extends "base.html" %}{% block body %}\n<tr><td>{{ personal("unsubscribe_url") }}\n'
        "{{ no_such_variable }}</td></tr>{% endblock %}")
    with pytest.raises(ComposeError, match=r"issue\.html:3: template error: 'no_such_variable' is undefined"):
        compose_issue(settings, EXAMPLE)


def test_template_syntax_error_names_template_and_line(settings, project):
    (project / "templates" / "issue.txt").write_text("line one\n{% for x in %}\n")
    with pytest.raises(ComposeError, match=r"issue\.txt:2: template syntax error"):
        compose_issue(settings, EXAMPLE)


def test_unknown_template(settings, project):
    make_issue(project, "t", {"a.md": "# A\n\nText.\n"}, toml='subject = "S"\ntemplate = "nope.html"\n')
    with pytest.raises(ComposeError, match="template 'nope.html' not found"):
        compose_issue(settings, "issues/t")


def test_template_without_unsubscribe_link_fails_lint(settings, project):
    (project / "templates" / "issue.txt").write_text("{{ issue.subject }}\n")
    with pytest.raises(ComposeError, match="text part: no unsubscribe link"):
        compose_issue(settings, EXAMPLE)


def test_lint_errors_and_warnings_name_the_report(settings, project):
    make_issue(project, "t", {
        "a.md": "# A\n\nSee [this](local.html). ![](https://x.org/p.png)\n",
    }, toml='subject = "S"\n')
    with pytest.raises(ComposeError) as err:
        compose_issue(settings, "issues/t")
    assert "a.md: link 'local.html' is not an absolute http(s) link" in str(err.value)
    make_issue(project, "u", {"a.md": "# A\n\nSee ![](https://x.org/p.png).\n"}, toml='subject = "S"\n')
    issue = compose_issue(settings, "issues/u")
    assert any(w.startswith("a.md: image") and "no alt text" in w for w in issue.warnings)


def test_empty_report_is_an_error(settings, project):
    make_issue(project, "t", {"a.md": "# A\n\nText.\n", "b.txt": "\n\n"}, toml='subject = "S"\n')
    with pytest.raises(ComposeError, match="b.txt: the report is empty"):
        compose_issue(settings, "issues/t")


def test_html_over_102kb_is_an_error_and_over_90kb_a_warning(settings, project):
    """STANDARDS A13: fail at 102 KB, warn at 90 KB."""
    paragraph = "Solidarity forever, for the union makes us strong. " * 20 + "\n\n"
    make_issue(project, "big", {"a.md": "# A\n\n" + paragraph * 95}, toml='subject = "S"\n')
    with pytest.raises(ComposeError, match="Gmail clips"):
        compose_issue(settings, "issues/big")
    make_issue(project, "near", {"a.md": "# A\n\n" + paragraph * 80}, toml='subject = "S"\n')
    issue = compose_issue(settings, "issues/near")
    assert any("close to Gmail" in w for w in issue.warnings)


@pytest.mark.parametrize("toml, reports, message", [
    (None, {}, r"issue\.toml: missing"),
    ('subject = "S"\nreports = ["gone.md"]\n', {"a.md": "x"}, r"report 'gone\.md' is listed but .* does not exist"),
    ('subject = "S\n', {}, r"issue\.toml: invalid TOML"),
    ('subject = "S"\nsubjet = "typo"\n', {}, r"issue\.toml: unknown key 'subjet'"),
    ('subject = "Hi\\r\\nBcc: x@y.org"\n', {}, r"'subject' contains a line break"),
    ('preheader = "x"\n', {}, r"'subject' is missing"),
    ('subject = "S"\n', {}, r"no reports in this issue"),
])
def test_bad_issue_folders_give_one_line_naming_the_file(settings, project, toml, reports, message):
    folder = project / "issues" / "bad"
    (folder / "reports").mkdir(parents=True)
    if toml is not None:
        (folder / "issue.toml").write_text(toml)
    for name, content in reports.items():
        (folder / "reports" / name).write_text(content)
    with pytest.raises(ComposeError, match=message) as err:
        compose_issue(settings, "issues/bad")
    assert "\n" not in str(err.value)


def test_content_hash_changes_when_a_report_changes(settings, project):
    before = compose_issue(settings, EXAMPLE).content_hash
    assert compose_issue(settings, EXAMPLE).content_hash == before
    report = project / "issues/example/reports/03-whats-on.md"
    report.write_text(report.read_text() + "\nOne more thing.\n")
    assert compose_issue(settings, EXAMPLE).content_hash != before
