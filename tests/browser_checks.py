"""What the browser tests measure on a rendered page: horizontal overflow and text contrast (WCAG)."""

from __future__ import annotations

import re
from typing import Any

# every element with its own visible text: its colour and the backgrounds behind it, innermost first
_TEXT_COLOURS = """(root) => {
  const out = [];
  for (const el of document.querySelectorAll(root + ' *')) {
    const own = [...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim());
    const box = el.getBoundingClientRect();
    const style = getComputedStyle(el);
    if (!own || box.width === 0 || style.visibility === 'hidden' || box.right < 0) continue;
    const bgs = [];
    for (let e = el; e; e = e.parentElement) {
      const bg = getComputedStyle(e).backgroundColor;
      bgs.push(bg);
      if (/^rgb\\(/.test(bg)) break;
    }
    out.push({tag: el.tagName, text: el.textContent.trim().slice(0, 40), color: style.color, bgs});
  }
  return out;
}"""


def _rgba(css: str) -> tuple[float, float, float, float]:
    nums = [float(n) for n in re.findall(r"[\d.]+", css)]
    return (nums[0], nums[1], nums[2], nums[3] if len(nums) > 3 else 1.0)


def _over(top: tuple[float, ...], below: tuple[float, float, float]) -> tuple[float, float, float]:
    a = top[3]
    return (top[0] * a + below[0] * (1 - a), top[1] * a + below[1] * (1 - a), top[2] * a + below[2] * (1 - a))


def _luminance(rgb: tuple[float, float, float]) -> float:
    def channel(c: float) -> float:
        c /= 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4
    r, g, b = map(channel, rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(fg: tuple[float, float, float], bg: tuple[float, float, float]) -> float:
    hi, lo = sorted((_luminance(fg), _luminance(bg)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def text_contrasts(page: Any, root: str = "body", canvas: tuple[float, float, float] = (255, 255, 255)
                   ) -> list[tuple[float, str, str]]:
    """(contrast ratio, tag, text) of every visible text element under *root*, from computed styles."""
    found = []
    for item in page.evaluate(_TEXT_COLOURS, root):
        bg = canvas
        for layer in reversed(item["bgs"]):
            bg = _over(_rgba(layer), bg)
        fg = _over(_rgba(item["color"]), bg)
        found.append((contrast(fg, bg), item["tag"], item["text"]))
    return found


def horizontal_overflow(page: Any) -> int:
    """How many CSS pixels the page is wider than the viewport (0: no horizontal scroll)."""
    return int(page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth"))
