"""The layout of the built-in templates and the accessibility lint, on the composed bytes (STANDARDS J3, J4).

The browser half (390/1280 px, dark mode, without <style>) is in tests/test_layout_browser.py.
"""

from __future__ import annotations

import re
from pathlib import Path

import lxml.html
import pytest
from click.testing import CliRunner

from mailer.cli import cli
from mailer.config import Settings, load_settings, text_direction
from mailer.content.a11y import Section, check_html
from mailer.content.compose import compose_issue
from mailer.content.csscompat import contrast_ratio, parse_color
from mailer.content.lint import a11y_warnings
from mailer.errors import ComposeError, ConfigError
from tests.helpers import TEST_ENV, make_issue

EXAMPLE = "issues/example"


def _doc(html: str) -> lxml.html.HtmlElement:
    return lxml.html.document_fromstring(html)


def test_example_issue_passes_the_lint_with_no_warning_J3(settings: Settings) -> None:
    issue = compose_issue(settings, EXAMPLE)
    assert issue.warnings == ()
    assert a11y_warnings(issue.reports, issue.html) == []
    assert a11y_warnings(issue.reports, issue.archive_html) == []


def test_html_has_lang_dir_title_and_an_article_named_by_the_subject_J3(settings: Settings) -> None:
    issue = compose_issue(settings, EXAMPLE)
    root = _doc(issue.html)
    assert (root.get("lang"), root.get("dir")) == ("en", "ltr")
    assert root.findtext("head/title") == issue.subject
    articles = root.xpath('//*[@role="article"]')
    assert len(articles) == 1 and articles[0].get("aria-label") == issue.subject
    assert articles[0].get("lang") == "en" and articles[0].get("dir") == "ltr"
    tables = root.xpath("//table")
    assert tables and all(t.get("role") == "presentation" for t in tables)
    assert [h.tag for h in root.xpath("//h1|//h2|//h3")][:3] == ["h1", "h2", "h2"]


def test_body_text_is_16px_and_every_inline_pair_of_colours_reaches_4_5_J3(settings: Settings) -> None:
    root = _doc(compose_issue(settings, EXAMPLE).html)
    for td in root.xpath('//td[contains(@class, "content")]'):
        assert re.search(r"font-size:\s*16px", td.get("style")), td.get("style")
    # the colours of the dark scheme: each text colour against the backgrounds it sits on
    style = "".join(root.xpath("//style/text()"))
    dark = style[style.index("prefers-color-scheme: dark"):]
    colours = {m.group(1): m.group(2) for m in re.finditer(r"([.\w ,-]+?)\s*\{\s*(?:background-)?color:\s*(#[0-9a-f]+)",
                                                            dark)}
    assert len(colours) >= 8
    page, box, toc, mast = (parse_color(re.search(p + r"[^}]*?background-color:\s*(#[0-9a-f]+)", dark).group(1))
                            for p in (r"body, \.wrapper", r"\.container", r"\.toc \{", r"\.masthead \{"))
    for selector, backgrounds in ((r"\.content, \.report-title, \.toc-title", (box, toc)),
                                  (r"\.content a", (box,)), (r"\.toc a", (toc,)),
                                  (r"\.byline, \.footer, \.footer a", (box,)), (r"\.masthead-date", (mast,)),
                                  (r"\.masthead-name", (mast,)), (r"\.content blockquote", (box,))):
        text = parse_color(re.search(selector + r"\s*\{[^}]*?[^-]color:\s*(#[0-9a-f]+)", dark).group(1))
        for background in backgrounds:
            assert contrast_ratio(text, background) >= 4.5, (selector, background)
    assert contrast_ratio((255, 255, 255), page) > 4.5


def test_fluid_hybrid_dark_mode_and_outlook_ghost_table_J4(settings: Settings) -> None:
    html = compose_issue(settings, EXAMPLE).html
    assert '<meta name="color-scheme" content="light dark">' in html
    assert "@media (prefers-color-scheme: dark)" in html
    assert re.search(r'<!--\[if mso\]><table role="presentation" align="center" width="600"', html)
    assert not re.search(r"(?<!max-)width:\s*600px", html) and 'width="600"' not in html.split("<!--[if mso]>")[0]
    container = _doc(html).xpath('//table[contains(@class, "container")]')[0]
    assert container.get("width") == "100%" and "max-width:600px" in container.get("style")


def test_preheader_is_hidden_without_a_colour_J5(settings: Settings) -> None:
    html = compose_issue(settings, EXAMPLE).html
    pre = _doc(html).xpath('//*[contains(@class, "preheader")]')[0]
    style = pre.get("style")
    assert "display:none" in style and "mso-hide:all" in style and "max-height:0" in style
    assert "color" not in style and "font-size" not in style


def test_premailer_attributes_are_valid_height_auto_removed_J3(settings: Settings, project: Path) -> None:
    make_issue(project, "img", {"a.md": "# Photo\n\n![The picket at dawn](https://img.example.org/p.jpg)\n"})
    html = compose_issue(settings, "issues/img").html
    img = re.search(r"<img [^>]*>", html).group(0)
    assert 'alt="The picket at dawn"' in img and "max-width:100%" in img and "height:auto" in img
    assert "height=" not in img
    for tag in re.findall(r"<(?:div|p|h1|h2|a|ol|li|span)\b[^>]*>", html):
        assert not re.search(r"\s(width|height|bgcolor|align|valign)=", tag), tag


def test_date_once_in_the_masthead_and_contents_as_an_ordered_list(settings: Settings, project: Path) -> None:
    root = _doc(compose_issue(settings, EXAMPLE).html)
    assert root.xpath('string(//*[contains(@class, "masthead-date")])').strip() == "December 2026"
    items = root.xpath('//ol[contains(@class, "toc-list")]/li/a')
    assert [a.get("href") for a in items] == ["#r-01-branch-meeting", "#r-02-bakery-appeal", "#r-03-whats-on"]
    assert all(root.xpath(f'//*[@id="{a.get("href")[1:]}"]') for a in items)
    make_issue(project, "nodate", {"a.md": "# A\n\nText.\n"},
               toml='subject = "Spring news"\ntitle = "Spring news"\ndate = "2027-03-01"\n')
    root = _doc(compose_issue(settings, "issues/nodate").html)
    assert root.xpath('string(//*[contains(@class, "masthead-date")])').strip() == "Spring news · 2027-03-01"


@pytest.mark.parametrize("language, direction", [("en", "ltr"), ("ar", "rtl"), ("he-IL", "rtl"), ("fa", "rtl"),
                                                 ("ur", "rtl"), ("az-Arab", "rtl"), ("sd-Deva", "ltr"),
                                                 ("pt-BR", "ltr")])
def test_direction_follows_the_language(language: str, direction: str) -> None:
    assert text_direction(language) == direction


def test_right_to_left_issue_has_dir_rtl_and_mirrored_indents(settings: Settings, project: Path) -> None:
    make_issue(project, "ar", {"a.md": "# تقرير\n\nاجتمع الفرع يوم الثلاثاء.\n\n> قالت مارتا.\n"})
    issue = compose_issue(settings.replace(language="ar"), "issues/ar")
    root = _doc(issue.html)
    assert (root.get("lang"), root.get("dir")) == ("ar", "rtl")
    assert root.xpath('//*[@role="article"]')[0].get("dir") == "rtl"
    assert "border-right:4px solid" in root.xpath("//blockquote")[0].get("style")
    assert issue.warnings == ()
    forced = compose_issue(settings.replace(language="ar", direction="ltr"), "issues/ar")
    assert _doc(forced.html).get("dir") == "ltr"
    assert any(w.startswith("a.md: the text is written right to left") for w in forced.warnings)


def test_direction_setting_is_checked(project: Path) -> None:
    (project / "mailer.toml").write_text('direction = "sideways"\n')
    with pytest.raises(ConfigError, match="setting 'direction': must be 'ltr', 'rtl' or empty"):
        load_settings(project, environ={})
    (project / "mailer.toml").write_text('language = "he"\n')
    assert load_settings(project, environ={}).text_direction == "rtl"
    assert load_settings(project, environ={"MAILER_DIRECTION": "rtl"}).text_direction == "rtl"


def test_lint_names_the_report_for_vague_links_bare_urls_and_skipped_headings_J3(
        settings: Settings, project: Path) -> None:
    make_issue(project, "bad", {
        "01-a.md": "# A\n\nSee the minutes [click here](https://example.org/m). "
                   "Or [https://example.org/x](https://example.org/x).\n\n#### Deep\n\nText.\n",
        "02-b.txt": "B\n\nDonations: https://strike.example.org/fund — thank you.\n",
    })
    result = CliRunner().invoke(cli, ["--root", str(project), "compose", "issues/bad"], env=TEST_ENV)
    assert result.exit_code == 0, result.output
    out = " ".join(result.output.split())
    assert "01-a.md: link text 'click here' says nothing out of context" in out
    assert "01-a.md: link text is a bare URL" in out
    assert "01-a.md: heading levels skipped (h3 before <h4>)" in out
    assert "warning: 02-b.txt" not in out, "a .txt report can only link a bare URL"


def test_lint_names_the_template_for_a_template_that_breaks_every_rule_J3_J4(settings: Settings,
                                                                            project: Path) -> None:
    base = project / "templates" / "base.html"
    html = base.read_text()
    html = html.replace('<html lang="{{ lang }}" dir="{{ dir }}"', "<html")
    html = re.sub(r"<title>.*?</title>", "", html)
    html = html.replace('<table role="presentation" class="container"', '<table class="container"')
    html = html.replace("<!--[if mso]>", "<!--[if IE]>")
    html = html.replace("font-size: 14px; line-height: 21px; color: #5e5e5b;",
                        "font-size: 12px; line-height: 21px; color: #aaaaaa; position: relative;")
    html = html.replace("font-family: Georgia, 'Times New Roman', serif; }", "font-family: 'Brand Serif'; }")
    html = html.replace('<style data-premailer="ignore">', '<style data-premailer="ignore">\n@import url(x.css);')
    base.write_text(html.replace("<body>", '<body><img src="https://example.org/logo.png">'
                                 '<div style="display:flex;background-image:url(https://example.org/bg.png)">'
                                 '<a href="https://example.org">Read more</a></div>'))
    warnings = "\n".join(compose_issue(settings, EXAMPLE).warnings)
    for expected in ("issue.html: <html> has no lang", "issue.html: <html> has no dir",
                     "issue.html: no <title>", 'issue.html: a layout table without role="presentation"',
                     "issue.html: text under 14 px (12 px)", "issue.html: text contrast 2.3:1 is under 4.5:1",
                     "issue.html: position is dropped by Gmail", 'issue.html: font-family "Brand Serif" has no '
                     "generic fallback", "issue.html: max-width is ignored by Outlook for Windows",
                     'issue.html: an image without alt', "issue.html: display:flex is ignored",
                     "issue.html: a background image without a background-color",
                     "issue.html: link text 'Read more' says nothing", "issue.html: @import in <style>"):
        assert expected in warnings, expected


def test_lint_contrast_and_size_follow_inheritance_and_skip_hidden_text() -> None:
    html = ('<html lang="en" dir="ltr"><head><title>t</title></head><body>'
            '<div id="r" style="background:#333333 url(x.png);color:#444444;font-size:10pt">'
            '<p style="font-size:1.5em">dim</p><span style="display:none;font-size:1px;color:#333">hidden</span>'
            '<h2 style="color:#ffffff;font-size:20px">big</h2></div></body></html>')
    warnings = check_html(html, {"r": Section("r.md", report=True)}, Section("issue.html"))
    assert warnings == ["r.md: text contrast 1.3:1 is under 4.5:1 (WCAG 1.4.3): 'dim'",
                        "r.md: heading levels skipped (h1 before <h2>): 'big'"], warnings


def test_lint_of_an_empty_html_part_is_one_line() -> None:
    assert check_html(" \n", {}, Section("issue.html")) == ["issue.html: the HTML part is empty"]


def test_a_report_that_is_only_whitespace_still_fails_with_one_line(settings: Settings, project: Path) -> None:
    make_issue(project, "blank", {"a.md": "   \n\n  \n"})
    with pytest.raises(ComposeError, match="a.md: the report is empty"):
        compose_issue(settings, "issues/blank")
    assert not (project / "build").exists()
