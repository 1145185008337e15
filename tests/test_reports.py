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


def test_one_long_pasted_paragraph_is_split_between_sentences_and_titled_from_its_first(tmp_path):
    report = read_report(write(tmp_path, "9f86d081884c7d659a2feaa0c55ad015.txt", LONG.strip()))
    assert len(LONG) > 6000
    assert report.title == "We met on a cold evening and talked about rent"   # cut at a clause
    assert any("no title; using the first sentence" in w for w in report.warnings)
    assert any("1 long paragraph(s) split between sentences" in w for w in report.warnings)
    paragraphs = [b.text for b in report.blocks]
    assert len(paragraphs) > 8 and max(map(len, paragraphs)) <= 800
    assert all(p.endswith("about.") for p in paragraphs)           # never inside a sentence
    assert " ".join(paragraphs) == " ".join(LONG.split())          # all the text, in order
    assert report.html.count("<p>") == len(paragraphs)
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


SPEECH = ("Thank you all for coming tonight. Dr. Patel opened the meeting at 7 p.m. and read the minutes of "
          "12 Nov. 2026, which were approved without change after a short discussion of the figures. "
          "J. R. Okafor reported on the bakery strike: it is now in its sixth week, and the owners have "
          "offered 2.5% against the 9% the union asked for. The fund stands at £1,234.56. ") * 3 + (
          "“We won’t stop,” said Ana Silva, who has worked there for twelve years. Sam Okafor from the "
          "tenants’ union spoke about Eastfield Road, e.g. the damp flats at no. 14 and the council’s reply.")


def test_breaks_fall_between_sentences_never_after_abbreviations_initials_or_numbers(tmp_path):
    report = read_report(write(tmp_path, "speech.txt", "Branch meeting\n\n" + SPEECH))
    paragraphs = [b.text for b in report.blocks]
    assert len(paragraphs) > 1
    assert " ".join(paragraphs) == " ".join(SPEECH.split())
    for p in paragraphs:
        assert not p.endswith(("Dr.", "p.m.", "Nov.", "J.", "R.", "no.", "e.g.", "£1,234."))
        assert p[0].isupper() or p[0] in "“\""


def test_a_new_speaker_or_named_subject_is_where_a_long_paragraph_breaks(tmp_path):
    filler = "The committee went through the accounts line by line and found them in order once more. "
    text = filler * 6 + "“We won’t stop,” said Ana Silva from the bakery. " + filler * 6
    paragraphs = [b.text for b in read_report(write(tmp_path, "r.txt", "Title\n\n" + text)).blocks]
    assert paragraphs[1].startswith("“We won’t stop,” said Ana Silva")
    text = filler * 6 + "Sam Okafor spoke next about the flats. " + filler * 6
    paragraphs = [b.text for b in read_report(write(tmp_path, "s.txt", "Title\n\n" + text)).blocks]
    assert paragraphs[1].startswith("Sam Okafor spoke next")


def test_markdown_long_paragraph_is_split_but_its_links_and_emphasis_stay_whole(tmp_path):
    body = ("# Report\n\n" + ("We *met* and [talked](https://example.org/t) about rent. " * 40) + "\n\n- a\n- b\n")
    report = read_report(write(tmp_path, "r.md", body))
    assert any("split between sentences" in w for w in report.warnings)
    assert report.html.count("<p>") > 1
    assert report.html.count('<a href="https://example.org/t"') == 40 and report.html.count("<em>met</em>") == 40
    assert [b.marker for b in report.blocks if b.kind == "li"] == ["-", "-"]


@pytest.mark.parametrize("suffix", ["txt", "md"])
def test_pasted_bullet_and_numbered_lines_become_lists(tmp_path, suffix):
    text = ("What we decided\n\nWe agreed three things:\n• a march on Saturday\n• a letter to the council\n"
            "• a collection\n\nThe order of the day:\n1) welcome\n2) reports\n3) any other business\n")
    if suffix == "md":
        text = "# " + text.replace("1)", "1.").replace("2)", "2.").replace("3)", "3.")
    report = read_report(write(tmp_path, f"r.{suffix}", text))
    items = [(b.marker, b.text) for b in report.blocks if b.kind == "li"]
    assert items == [("-", "a march on Saturday"), ("-", "a letter to the council"), ("-", "a collection"),
                     ("1.", "welcome"), ("2.", "reports"), ("3.", "any other business")]
    assert report.html.count("<li>") == 6 and "<ul>" in report.html and "<ol>" in report.html


def test_typography_is_the_same_for_txt_and_markdown_reports(tmp_path):
    line = "It's the \"last\" call -- really... (c) stays a label"
    txt = read_report(write(tmp_path, "a.txt", "Title\n\n" + line + ".\n"))
    md = read_report(write(tmp_path, "b.md", "# Title\n\n" + line + ".\n"))
    expected = "It’s the “last” call – really… (c) stays a label."
    assert txt.blocks[0].text == expected == md.blocks[0].text
    assert "It’s the “last” call" in txt.html and "It’s the “last” call" in md.html


def test_a_markdown_title_keeps_its_curly_apostrophe_and_acronyms(tmp_path):
    report = read_report(write(tmp_path, "wcpi-meeting.md", "# What's on at the WCPI\n\nDetails follow.\n"))
    assert report.title == "What’s on at the WCPI"
    untitled = read_report(write(tmp_path, "wcpi-meeting.txt", "The WCPI met on Monday, and 40 came.\n"))
    assert untitled.title == "The WCPI met on Monday, and 40 came"


def test_a_sign_off_without_a_full_stop_is_not_called_cut_off(tmp_path):
    report = read_report(write(tmp_path, "r.txt", "Title\n\nWe met.\n\nThank you – Jo & the team\n"))
    assert not any("cut off" in w for w in report.warnings)


def test_text_part_keeps_numbers_nesting_tables_and_bare_links(tmp_path):
    from mailer.content.templating import wrap_blocks

    md = ("# T\n\n3. third\n4. fourth\n   - nested point\n\n| Branch | Members | Dues |\n|---|---|---|\n"
          "| Eastfield | 41 | £2 |\n| Mill Lane | 7 | £1 |\n| Canal St | 12 | £2 |\n\nSee https://example.org/x now.\n")
    report = read_report(write(tmp_path, "r.md", md))
    text = wrap_blocks(report.blocks)
    assert "  3. third\n  4. fourth\n    - nested point" in text
    assert "Branch     Members  Dues\n---------  -------  ----\nEastfield  41       £2" in text
    assert report.links == ["https://example.org/x"] and "See https://example.org/x [1] now." in text
    assert '<a href="https://example.org/x"' in report.html


def test_a_bare_link_ending_a_clause_leaves_its_colon_outside(tmp_path):
    report = read_report(write(tmp_path, "r.md", "# T\n\nMinutes: https://a.example/m: and https://b.example/n: done.\n"))
    assert report.links == ["https://a.example/m", "https://b.example/n"]
    assert '<a href="https://a.example/m" rel="noopener noreferrer">https://a.example/m</a>:' in report.html
