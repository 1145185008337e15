"""The preview's index.html in Chromium: every frame loads; the dark copy is dark next to a light frame."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mailer.content.compose import compose_issue
from mailer.mail.preview import write_preview
from mailer.mail.previewpage import dark_copy
from tests.test_browser import browser_page  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.slow]
MAIL = ('<!doctype html><html><head><meta name="color-scheme" content="light dark"><style>'
        'body { background: #ffffff; color: #111111 }'
        '@media (prefers-color-scheme: dark) { body { background: #121212 !important; color: #eeeeee !important } }'
        '</style></head><body><p>Hello</p></body></html>')


def test_dark_copy_is_dark_in_a_frame_beside_a_light_one(tmp_path: Path, browser_page) -> None:  # type: ignore[no-untyped-def]
    """Why a copy: in Chromium a frame's prefers-color-scheme follows the top page, not its color-scheme."""
    (tmp_path / "light.html").write_text(MAIL)
    (tmp_path / "dark.html").write_text(dark_copy(MAIL))
    (tmp_path / "index.html").write_text('<iframe src="light.html"></iframe><iframe style="color-scheme: dark" '
                                         'src="light.html"></iframe><iframe src="dark.html"></iframe>')
    page = browser_page
    page.emulate_media(color_scheme="light")
    page.goto((tmp_path / "index.html").as_uri())
    page.wait_for_load_state("load")
    backgrounds = [f.evaluate("getComputedStyle(document.body).backgroundColor") for f in page.frames[1:]]
    assert backgrounds == ["rgb(255, 255, 255)", "rgb(255, 255, 255)", "rgb(18, 18, 18)"]


def test_preview_index_loads_every_frame_and_screenshots(settings, project, browser_page) -> None:  # type: ignore[no-untyped-def]
    files = write_preview(settings, compose_issue(settings, "issues/example"))
    page = browser_page
    page.set_viewport_size({"width": 1400, "height": 1000})
    page.goto(files.index.as_uri())
    page.wait_for_load_state("load")
    frames = page.frames[1:]
    assert len(frames) == 6
    for frame in frames:
        assert "Branch meeting" in frame.evaluate("document.body.innerText")
    widths = [f.evaluate("document.documentElement.clientWidth") for f in frames]
    assert all(w <= 390 for w in widths[3:]) and all(w > 600 for w in widths[:3])
    assert page.evaluate("document.querySelectorAll('pre').length") == 2
    shot = Path(os.environ.get("PREVIEW_SHOT_DIR", str(project))) / "preview-index.png"
    # frames below the viewport are not painted in a full-page shot: make the viewport the page's height
    page.set_viewport_size({"width": 1400, "height": page.evaluate("document.documentElement.scrollHeight")})
    page.wait_for_timeout(300)
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
