"""The example issue in Chromium: phone and desktop, light and dark, with and without <style> (STANDARDS J3, J4).

What a reader's mail client shows, read from the browser's computed styles: no horizontal
scroll on a phone (also when the client drops <style>, as some webmail does), every visible
text at least 14 px (body text 16 px) and at 4.5:1 against the background it sits on, in
light and in dark mode (`emulate_media(color_scheme="dark")`).
"""

from __future__ import annotations

import email
from email import policy
from typing import Iterator

import pytest

from mailer.config import Settings
from mailer.content.compose import compose_issue
from mailer.content.csscompat import contrast_ratio, luminance, parse_color
from mailer.mail.message import MessageFactory, Recipient
from tests.helpers import chromium

pytestmark = [pytest.mark.browser, pytest.mark.slow]

REMOVE_STYLE = "document.querySelectorAll('style').forEach(s => s.remove())"
# every element with text of its own that a reader can see: its colours, size and the
# background it sits on (the nearest ancestor with an opaque background colour)
VISIBLE_TEXT = """() => {
  const out = [];
  for (const el of document.body.querySelectorAll('*')) {
    const own = Array.from(el.childNodes).filter(n => n.nodeType === 3).map(n => n.textContent).join('').trim();
    if (!own || !el.getClientRects().length) continue;
    const cs = getComputedStyle(el);
    if (cs.visibility !== 'visible' || parseFloat(cs.opacity) === 0) continue;
    let bg = null;
    for (let a = el; a; a = a.parentElement) {
      const c = getComputedStyle(a).backgroundColor;
      if (c !== 'transparent' && !/rgba\\(.*,\\s*0\\)$/.test(c)) { bg = c; break; }
    }
    out.push({text: own.slice(0, 40), tag: el.tagName, color: cs.color, background: bg,
              size: parseFloat(cs.fontSize), weight: parseInt(cs.fontWeight), cls: el.className});
  }
  return out;
}"""


@pytest.fixture(scope="module")
def browser() -> Iterator:  # type: ignore[type-arg]
    with chromium() as launched:
        yield launched


@pytest.fixture
def issue_html(settings: Settings) -> str:
    """The HTML part of the example issue as one reader gets it."""
    issue = compose_issue(settings, "issues/example")
    factory = MessageFactory(settings, subject=issue.subject, html=issue.html, text=issue.text,
                             issue_slug=issue.slug, preheader=issue.preheader)
    data = factory.render(Recipient(key=1, email="ana@example.net", name="Ana Reader", subscriber_uid="u1",
                                    list_slug="news", list_name="Riverside News")).data
    message = email.message_from_bytes(data, policy=policy.default)
    return next(p.get_content() for p in message.walk() if p.get_content_type() == "text/html")


def _open(browser, html: str, width: int, scheme: str, style: bool):  # type: ignore[no-untyped-def]
    page = browser.new_page(viewport={"width": width, "height": 800})
    page.emulate_media(color_scheme=scheme)
    page.set_content(html)
    if not style:
        page.evaluate(REMOVE_STYLE)
    return page


def _rgb(css: str) -> tuple[float, float, float]:
    rgb = parse_color(css)
    assert rgb is not None, f"not an opaque colour: {css}"
    return rgb


@pytest.mark.parametrize("width", [320, 390])
@pytest.mark.parametrize("style", [True, False], ids=["style", "no-style"])
def test_no_horizontal_scroll_on_a_phone_with_and_without_style_J4(browser, issue_html: str, width: int,
                                                                 style: bool) -> None:
    page = _open(browser, issue_html, width, "light", style)
    try:
        scroll, client = page.evaluate("[document.documentElement.scrollWidth, document.documentElement.clientWidth]")
        assert scroll <= client, f"{scroll} px of content in a {client} px window"
        box = page.evaluate("(() => { const r = document.querySelector('table.container').getBoundingClientRect();"
                            " return [r.left, r.right]; })()")
        assert box[0] >= 0 and box[1] <= width
    finally:
        page.close()


def test_desktop_keeps_the_600px_column(browser, issue_html: str) -> None:
    for style in (True, False):
        page = _open(browser, issue_html, 1280, "light", style)
        try:
            left, width = page.evaluate("(() => { const r = document.querySelector('table.container')"
                                        ".getBoundingClientRect(); return [r.left, r.width]; })()")
            assert width == 600 and abs(left - (1280 - 600) / 2) <= 1
        finally:
            page.close()


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("width", [390, 1280])
@pytest.mark.parametrize("style", [True, False], ids=["style", "no-style"])
def test_text_contrast_and_size_from_computed_styles_J3(browser, issue_html: str, scheme: str, width: int,
                                                       style: bool) -> None:
    page = _open(browser, issue_html, width, scheme, style)
    try:
        texts = page.evaluate(VISIBLE_TEXT)
        page_background = _rgb(page.evaluate("getComputedStyle(document.body).backgroundColor"))
    finally:
        page.close()
    assert len(texts) > 30 and any("Miller" in t["text"] for t in texts)
    assert all("preheader" not in t["cls"] for t in texts), "the preheader is visible"
    if scheme == "dark" and style:
        assert luminance(page_background) < 0.02, "dark mode styles did not apply"
    low = []
    for t in texts:
        assert t["background"], t
        ratio = contrast_ratio(_rgb(t["color"]), _rgb(t["background"]))
        large = t["size"] >= 24 or (t["weight"] >= 700 and t["size"] >= 18.66)
        if ratio < (3.0 if large else 4.5) or t["size"] < 14:
            low.append((t["text"], t["color"], t["background"], round(ratio, 2), t["size"]))
    assert low == []
    body = [t["size"] for t in texts if t["tag"] == "P" and "byline" not in t["cls"]
            and t["text"].startswith(("Forty-two", "We are the forty-one", "Welcome"))]
    assert len(body) == 3 and min(body) >= 16
