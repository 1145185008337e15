"""Reading reports as people really write and paste them."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailer.errors import ComposeError
from mailer.content.reports import read_report

LONG = ("We met on a cold evening and talked about rent, repairs and the council’s “consultation” — "
        "which nobody was told about. ") * 60  # ~6,000 characters, no line break


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return path


def test_one_long_pasted_paragraph_gets_a_title_from_the_file_name_and_warnings(tmp_path):
    report = read_report(write(tmp_path, "02-union-appeal.txt", LONG.strip()))
    assert len(LONG) > 6000
    assert report.title == "Union appeal"
    assert any("no title" in w for w in report.warnings)
    assert any("paragraph of" in w for w in report.warnings)
    assert report.html.count("<p>") == 1
    assert "“consultation”" in report.html


def test_first_short_line_is_the_title_and_paragraphs_follow(tmp_path):
    text = "Solidarity with the cleaners\n\nFirst paragraph here.\n\nSecond – with a dash.\n"
    report = read_report(write(tmp_path, "r.txt", text))
    assert report.title == "Solidarity with the cleaners"
    assert [b.text for b in report.blocks] == ["First paragraph here.", "Second – with a dash."]
    assert report.warnings == []


def test_windows_line_endings_bom_and_non_ascii_names(tmp_path):
    raw = "\ufeffReport from Łódź\r\n\r\nZofia Kowalczyk and Siobhán Ní Bhriain spoke.\r\n".encode("utf-8")
    report = read_report(write(tmp_path, "r.txt", raw))
    assert report.title == "Report from Łódź"
    assert report.blocks[0].text == "Zofia Kowalczyk and Siobhán Ní Bhriain spoke."
    assert "\r" not in report.html and "\ufeff" not in report.title


def test_one_paragraph_per_line_without_blank_lines(tmp_path):
    report = read_report(write(tmp_path, "r.txt", "Title\nFirst paragraph.\nSecond paragraph.\n"))
    assert [b.text for b in report.blocks] == ["First paragraph.", "Second paragraph."]


def test_text_that_ends_mid_word_reads_with_a_warning(tmp_path):
    report = read_report(write(tmp_path, "r.txt", "Cut off\n\nThe meeting agreed to contin"))
    assert report.blocks[-1].text.endswith("contin")
    assert any("cut off" in w for w in report.warnings)


def test_markdown_front_matter_and_heading_levels(tmp_path):
    md = "---\ntitle: Branch meeting\nauthor: Priya\ndate: 2026-11-18\n---\n\n## Decisions\n\nWe *agreed*.\n"
    report = read_report(write(tmp_path, "r.md", md))
    assert (report.title, report.author, report.date) == ("Branch meeting", "Priya", "2026-11-18")
    assert "<h3>Decisions</h3>" in report.html and "<em>agreed</em>" in report.html


def test_markdown_h1_is_the_title_and_links_become_footnotes(tmp_path):
    report = read_report(write(tmp_path, "r.md", "# Events\n\nSee [the site](https://example.org/e).\n"))
    assert report.title == "Events"
    assert report.links == ["https://example.org/e"]
    assert report.blocks[0].text == "See the site [1]."


def test_report_html_is_sanitised(tmp_path):
    md = ('Hi <script>alert(1)</script><iframe src="https://evil.example"></iframe>'
          '<a href="javascript:alert(1)" onclick="x()">click</a> <img src="https://x.org/a.png" onerror="x()">\n')
    html = read_report(write(tmp_path, "r.md", md)).html
    for bad in ("<script", "<iframe", "javascript:", "onclick", "onerror"):
        assert bad not in html
    assert "click" in html


def test_plain_text_urls_become_links_and_text_is_escaped(tmp_path):
    report = read_report(write(tmp_path, "r.txt", "T\n\nGive at https://fund.example.org/x. <b>not bold</b>\n"))
    assert '<a href="https://fund.example.org/x"' in report.html
    assert "&lt;b&gt;not bold&lt;/b&gt;" in report.html


@pytest.mark.parametrize("content, message", [
    (b"caf\xe9 au lait\n", r"r.txt:1: not UTF-8"),
    (b"\x00\x01\x02binary", "binary file"),
    (b"---\ntitle: x\nthis is not a key value\n---\nbody\n", r"r.txt:3: invalid front matter"),
    (b"---\ntitel: x\n---\nbody\n", r"r.txt:2: unknown front matter key 'titel'"),
    (b"---\ntitle: x\nbody\n", "never closed"),
])
def test_bad_report_files_name_the_file_and_line(tmp_path, content, message):
    with pytest.raises(ComposeError, match=message):
        read_report(write(tmp_path, "r.txt", content))


def test_unknown_report_type(tmp_path):
    with pytest.raises(ComposeError, match=r"r.docx: unknown report type"):
        read_report(write(tmp_path, "r.docx", "x"))
