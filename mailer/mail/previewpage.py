"""The preview's variants of one rendered mail and the index page that shows them side by side.

A dark variant cannot come from an iframe: Chromium gives a frame the
top page's `prefers-color-scheme`, whatever `color-scheme` the <iframe>
element has (tried with Chromium 156), so a light and a dark frame cannot
sit side by side. `dark_copy` therefore makes the mail's own dark-mode rules
unconditional, which is what a client honouring prefers-color-scheme applies.
Forced inversion (Gmail's apps) is not reproduced. `without_style` drops every
<style> block, as clients that ignore <style> or media queries do.
"""

from __future__ import annotations

import html as html_lib
import re
from dataclasses import dataclass

_STYLE = re.compile(r"<style\b[^>]*>.*?</style\s*>", re.I | re.S)
_DARK = re.compile(r"\(\s*prefers-color-scheme\s*:\s*dark\s*\)", re.I)
_LIGHT = re.compile(r"\(\s*prefers-color-scheme\s*:\s*light\s*\)", re.I)
_META_SCHEME = re.compile(r"<meta\s+name=[\"']?(?:supported-)?color-scheme[\"']?[^>]*>", re.I)


def dark_copy(html: str) -> str:
    """*html* as a dark-mode reader sees it: its dark rules always on, its light-only rules off."""
    html = _LIGHT.sub("(max-width: 0px)", _DARK.sub("(min-width: 0px)", html))
    return _META_SCHEME.sub('<meta name="color-scheme" content="dark">', html)


def without_style(html: str) -> str:
    """*html* without its <style> blocks (inline styles stay)."""
    return _STYLE.sub("", html)


@dataclass(frozen=True)
class Frame:
    caption: str
    src: str
    width: int
    dark: bool = False


FRAMES = (
    Frame("Named reader · light · 640 px", "issue.html", 640),
    Frame("Nameless reader · light · 640 px", "issue-nameless.html", 640),
    Frame("Named reader · dark · 640 px", "issue-dark.html", 640, dark=True),
    Frame("Phone · 390 px · light", "issue.html", 390),
    Frame("Phone · 390 px · dark", "issue-dark.html", 390, dark=True),
    Frame("Phone · 390 px · without <style>", "issue-nostyle.html", 390),
)

_CSS = """
body { font-family: system-ui, sans-serif; margin: 16px; background: #eee; color: #111; }
.frames, .texts { display: flex; gap: 24px; align-items: flex-start; flex-wrap: wrap; }
figure { margin: 0; } figcaption { font-weight: bold; margin-bottom: 4px; }
iframe { background: #fff; border: 1px solid #999; height: 900px; display: block; }
figure.dark iframe { background: #121212; }
pre { background: #fff; padding: 12px; border: 1px solid #999; width: 74ch; max-width: 100%; white-space: pre-wrap;
  margin: 0; }
table { background: #fff; border-collapse: collapse; } th, td { text-align: left; padding: 2px 8px;
  border-bottom: 1px solid #ddd; vertical-align: top; font-size: 13px; }
.warnings li { margin: 4px 0; } .none { color: #2e6b30; }
#error { display: none; background: #fdd; border: 2px solid #b00; padding: 8px; white-space: pre-wrap; }
"""

# the page reloads itself when `mailer preview --serve` rebuilds (the static files have no /__status)
_RELOAD = """<script>
let seen = null;
async function poll() {
  try {
    const r = await fetch('/__status', {cache: 'no-store'});
    if (r.ok) {
      const s = await r.json();
      if (seen !== null && s.version !== seen) location.reload();
      seen = s.version;
      const box = document.getElementById('error');
      box.style.display = s.error ? 'block' : 'none';
      box.textContent = s.error || '';
    }
  } catch (e) {}
  setTimeout(poll, 1000);
}
if (location.protocol.startsWith('http')) poll();
</script>"""


def index_page(subject: str, name: str, warnings: tuple[str, ...], headers: list[tuple[str, str]],
               text: str, nameless_text: str) -> str:
    """The preview's index.html: the frames, both text parts, then the warnings and the headers."""
    esc = html_lib.escape
    frames = "\n".join(
        f'<figure{" class=dark" if f.dark else ""}><figcaption>{esc(f.caption.replace("Named reader", f"Named reader ({name})"))}'
        f'</figcaption><iframe title="{esc(f.caption)}" src="{f.src}" width="{f.width}"></iframe></figure>'
        for f in FRAMES)
    items = "".join(f"<li>{esc(w)}</li>" for w in warnings) or '<li class="none">none</li>'
    rows = "\n".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in headers)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Preview: {esc(subject)}</title>
<style>{_CSS}</style></head><body>
<h1>{esc(subject)}</h1>
<div id="error"></div>
<div class="frames">
{frames}
</div>
<h2>Text part</h2>
<div class="texts">
<figure><figcaption>Named reader ({esc(name)})</figcaption><pre>{esc(text)}</pre></figure>
<figure><figcaption>Nameless reader</figcaption><pre>{esc(nameless_text)}</pre></figure>
</div>
<h2 id="warnings">Compose warnings and lint ({len(warnings)})</h2>
<ul class="warnings">{items}</ul>
<h2>Headers</h2><table>{rows}</table>
{_RELOAD}
</body></html>
"""
