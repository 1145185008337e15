"""Accessibility and mail-client lint of the final inlined HTML (STANDARDS J3, J4).

Reads the HTML a mail client gets, with the styles it keeps: inline styles only (the <style>
block holds progressive enhancement that Gmail and others drop). Every finding is a warning
naming where it comes from: a report file, the intro of issue.toml, or the template.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import lxml.etree

from mailer.content import csscompat
from mailer.content.csscompat import Rgb, background_color, contrast_ratio, parse_color, parse_style

MIN_FONT_PX = 14.0
MIN_CONTRAST, MIN_CONTRAST_LARGE = 4.5, 3.0     # WCAG 1.4.3; large: 24 px, or 18.66 px bold
VAGUE_LINKS = frozenset({"click here", "here", "click", "read more", "more", "learn more", "link",
                         "this link", "this", "more info", "info", "details", "go", "continue",
                         "find out more", "see more"})
_BARE_URL = re.compile(r"(https?://|www\.)\S+\Z", re.IGNORECASE)
_HEADING = re.compile(r"h[1-6]\Z")
# the default sizes of user agents, relative to the parent's
_RELATIVE_SIZE = {"h1": 2.0, "h2": 1.5, "h3": 1.17, "h4": 1.0, "h5": 0.83, "h6": 0.67, "small": 0.83,
                  "sub": 0.83, "sup": 0.83}
_RTL = re.compile(r"[\u0590-\u08ff\ufb1d-\ufdff\ufe70-\ufeff]")
_LTR = re.compile(r"[A-Za-z\u00c0-\u024f\u0370-\u03ff\u0400-\u04ff]")
_MSO = re.compile(r"<!--\[if [^\]]*\bmso\b")
_SKIP = frozenset({"head", "style", "script", "title", "template"})


@dataclass(frozen=True)
class Section:
    """Where a part of the HTML comes from: *label* names it in warnings."""

    label: str
    report: bool = False         # a report file: lint.py checks its images
    plain_text: bool = False     # a .txt report: its links can only be bare URLs


@dataclass(frozen=True)
class _Inherited:
    color: Rgb | None
    background: Rgb | None
    size: float
    bold: bool
    section: Section


class _Findings:
    """Warnings grouped by (where, what): one line each, with how many places and the first."""

    def __init__(self) -> None:
        self.found: dict[tuple[str, str], list[str]] = {}

    def add(self, section: Section, what: str, example: str = "") -> None:
        self.found.setdefault((section.label, what), []).append(example)

    def lines(self) -> list[str]:
        out = []
        for (label, what), examples in self.found.items():
            shown = next((e for e in examples if e), "")
            where = f" ({len(examples)} places, first: {shown})" if len(examples) > 1 and shown else (
                f" ({len(examples)} places)" if len(examples) > 1 else (f": {shown}" if shown else ""))
            out.append(f"{label}: {what}{where}")
        return out


def check_html(html: str, sections: dict[str, Section], template: Section) -> list[str]:
    """Warnings about *html*; *sections* maps element ids to the part they start."""
    root = lxml.etree.fromstring(html, lxml.etree.HTMLParser()) if html.strip() else None
    findings = _Findings()
    if root is None:
        findings.add(template, "the HTML part is empty")
        return findings.lines()
    _check_document(root, template, findings)
    containers = _section_containers(root, sections)
    start = _Inherited(color=(0, 0, 0), background=(255, 255, 255), size=16.0, bold=False, section=template)
    state = {"heading": 0, "mso": bool(_MSO.search(html)), "text": {}}
    body = root.find("body")
    if body is not None:
        _walk(body, start, containers, findings, state)
    direction = (root.get("dir") or "ltr").lower()
    for section, (rtl, ltr) in state["text"].items():
        if section.label == template.label:
            continue
        if rtl > ltr and direction != "rtl":
            findings.add(section, 'the text is written right to left but the issue is dir="ltr": set the '
                         '`direction` (or `language`) setting, or send it as its own issue')
        elif ltr > rtl and rtl and direction == "rtl":
            findings.add(section, 'the text is written left to right but the issue is dir="rtl"')
    return findings.lines()


def _check_document(root: lxml.etree._Element, template: Section, findings: _Findings) -> None:
    if not (root.get("lang") or "").strip():
        findings.add(template, "<html> has no lang: screen readers guess the language (WCAG 3.1.1)")
    if not (root.get("dir") or "").strip():
        findings.add(template, '<html> has no dir ("ltr" or "rtl")')
    if any("@import" in (style.text or "") for style in root.iter("style")):
        findings.add(template, "@import in <style>: Gmail drops the whole block and no client "
                     "should fetch it; put the CSS in the template")
    title = root.find("head/title")
    if title is None or not (title.text or "").strip():
        findings.add(template, "no <title>: screen readers and browsers show nothing for the page")


def _section_containers(root: lxml.etree._Element, sections: dict[str, Section]) -> dict[object, Section]:
    """The element holding each section: the element of the id if it is a box, else its nearest
    cell or box ancestor that holds no other section's id."""
    elements = {}
    for element in root.iter():
        ident = element.get("id") if isinstance(element.tag, str) else None
        if ident in sections:
            elements[element] = sections[ident]
    out: dict[object, Section] = {}
    for element, section in elements.items():
        box = element
        while box is not None and box.tag not in ("td", "th", "div", "section", "article"):
            box = box.getparent()
        if box is None or any(other is not element and _contains(box, other) for other in elements):
            box = element
        out[box] = section
    return out


def _contains(ancestor: lxml.etree._Element, element: lxml.etree._Element) -> bool:
    return any(a is ancestor for a in element.iterancestors())


def _font_px(value: str | None, parent: float, tag: str) -> float:
    if value is None:
        return parent * _RELATIVE_SIZE.get(tag, 1.0)
    match = re.fullmatch(r"([\d.]+)\s*(px|pt|em|rem|%)?", value.strip().lower())
    if not match:
        return parent
    number, unit = float(match.group(1)), match.group(2) or "px"
    return {"px": number, "pt": number * 4 / 3, "em": number * parent, "rem": number * 16.0,
            "%": number * parent / 100}[unit]


def _bold(weight: str, tag: str, parent: bool) -> bool:
    if weight:
        return weight in ("bold", "bolder") or weight.isdigit() and int(weight) >= 600
    return parent or tag in ("b", "strong", "th") or bool(_HEADING.match(tag))


def _hidden(element: lxml.etree._Element, style: dict[str, str]) -> bool:
    return (style.get("display") == "none" or style.get("visibility") == "hidden"
            or element.get("hidden") is not None or element.get("aria-hidden") == "true")


def _walk(element: lxml.etree._Element, parent: _Inherited, containers: dict[object, Section],
          findings: _Findings, state: dict) -> None:
    tag = element.tag if isinstance(element.tag, str) else ""
    if not tag or tag in _SKIP:
        return
    style = parse_style(element.get("style"))
    if _hidden(element, style):
        return
    section = containers.get(element, parent.section)
    color = parse_color(style.get("color") or element.get("color")) or parent.color
    own_background = background_color(style, element.get("bgcolor"))
    here = _Inherited(color=color, background=own_background or parent.background,
                      size=_font_px(style.get("font-size"), parent.size, tag),
                      bold=_bold(style.get("font-weight", ""), tag, parent.bold), section=section)
    _check_element(element, tag, style, here, findings, state)
    own_text = " ".join(t for t in [element.text or ""] + [c.tail or "" for c in element] if t.strip())
    if own_text.strip():
        _check_text(own_text, here, findings, state)
    for child in element:
        _walk(child, here, containers, findings, state)


def _check_text(text: str, here: _Inherited, findings: _Findings, state: dict) -> None:
    sample = repr(" ".join(text.split())[:40])
    if here.size < MIN_FONT_PX:
        findings.add(here.section, f"text under {MIN_FONT_PX:g} px ({here.size:g} px) is hard to read", sample)
    if here.color is not None and here.background is not None:
        ratio = contrast_ratio(here.color, here.background)
        large = here.size >= 24 or (here.bold and here.size >= 18.66)
        if ratio < (MIN_CONTRAST_LARGE if large else MIN_CONTRAST):
            findings.add(here.section, f"text contrast {ratio:.1f}:1 is under "
                         f"{MIN_CONTRAST_LARGE if large else MIN_CONTRAST:g}:1 (WCAG 1.4.3)", sample)
    counts = state["text"].setdefault(here.section, [0, 0])
    counts[0] += len(_RTL.findall(text))
    counts[1] += len(_LTR.findall(text))


def _check_element(element: lxml.etree._Element, tag: str, style: dict[str, str], here: _Inherited,
                   findings: _Findings, state: dict) -> None:
    section = here.section
    for problem in csscompat.unsupported(element.get("style") or "", element.get("bgcolor")):
        findings.add(section, problem)
    if "max-width" in style and not state["mso"] and tag in ("table", "div") \
            and not (element.get("width") or "").isdigit():
        findings.add(section, "max-width is ignored by Outlook for Windows: add a fixed-width table "
                     "in an <!--[if mso]> comment around it")
    if tag == "table":
        role = (element.get("role") or "").lower()
        is_data = element.find(".//th") is not None or element.find(".//caption") is not None
        if role not in ("presentation", "none") and not is_data:
            findings.add(section, 'a layout table without role="presentation": screen readers read it '
                         "as a data table")
    elif tag == "img":
        if element.get("alt") is None and not section.report:
            findings.add(section, 'an image without alt (use alt="" when it is decorative)',
                         repr((element.get("src") or "")[:60]))
    elif tag == "a" and element.get("href") is not None:
        _check_link(element, section, findings)
    elif _HEADING.match(tag):
        level = int(tag[1])
        if level > state["heading"] + 1:
            skipped = ", ".join(f"h{n}" for n in range(state["heading"] + 1, level))
            findings.add(section, f"heading levels skipped ({skipped} before <{tag}>)",
                         repr(" ".join("".join(element.itertext()).split())[:40]))
        state["heading"] = level


def _check_link(element: lxml.etree._Element, section: Section, findings: _Findings) -> None:
    text = " ".join("".join(element.itertext()).split())
    label = (element.get("aria-label") or "").strip()
    alts = [img.get("alt") or "" for img in element.iter("img")]
    if not text and not label and not any(a.strip() for a in alts):
        findings.add(section, "a link with no text: screen readers read out its address",
                     repr((element.get("href") or "")[:60]))
        return
    name = (label or text).lower().rstrip(".:!?…»›→ ").lstrip("«‹ ")
    if name in VAGUE_LINKS:
        findings.add(section, f"link text {text[:40]!r} says nothing out of context: name where it goes "
                     "(WCAG 2.4.4)")
    elif _BARE_URL.match(name) and not section.plain_text:
        findings.add(section, "link text is a bare URL, read out character by character: write what "
                     "it is, [like this](https://...)", repr(text[:60]))
