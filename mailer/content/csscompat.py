"""CSS that mail clients drop, and colours: the tables the a11y lint reads (STANDARDS J3, J4).

What each client drops follows caniemail.com (2026): Gmail removes declarations it does not
support, Outlook for Windows renders with Word (no max-width, float, position, flex or grid,
no background images without VML), Yahoo and Apple Mail drop less. A property is reported only
when nothing in the same element falls back for it. Imports nothing of mailer.
"""

from __future__ import annotations

import functools
import re

GENERIC_FONTS = frozenset({"serif", "sans-serif", "monospace", "cursive", "fantasy", "system-ui",
                           "ui-serif", "ui-sans-serif", "ui-monospace"})
_URL_OR_GRADIENT = re.compile(r"url\(|gradient\(", re.IGNORECASE)
_COLOR_TOKEN = re.compile(r"#[0-9a-f]{3,8}\b|rgba?\([^)]*\)|\b[a-z]+\b", re.IGNORECASE)

NAMED = {
    "black": "#000000", "white": "#ffffff", "red": "#ff0000", "maroon": "#800000", "green": "#008000",
    "lime": "#00ff00", "blue": "#0000ff", "navy": "#000080", "yellow": "#ffff00", "olive": "#808000",
    "aqua": "#00ffff", "cyan": "#00ffff", "teal": "#008080", "fuchsia": "#ff00ff", "magenta": "#ff00ff",
    "purple": "#800080", "silver": "#c0c0c0", "gray": "#808080", "grey": "#808080",
    "darkgray": "#a9a9a9", "darkgrey": "#a9a9a9", "lightgray": "#d3d3d3", "lightgrey": "#d3d3d3",
    "dimgray": "#696969", "dimgrey": "#696969", "whitesmoke": "#f5f5f5", "gainsboro": "#dcdcdc",
    "orange": "#ffa500", "darkred": "#8b0000", "darkblue": "#00008b", "darkgreen": "#006400",
    "brown": "#a52a2a", "pink": "#ffc0cb", "gold": "#ffd700", "ivory": "#fffff0", "beige": "#f5f5dc",
}

Rgb = tuple[float, float, float]


@functools.lru_cache(maxsize=1024)
def parse_style(style: str | None) -> dict[str, str]:
    """An inline style attribute as {property: value}, lower-case names, !important dropped.
    Cached (a template repeats its styles): do not change the dict returned."""
    out: dict[str, str] = {}
    if not style:
        return out
    for declaration in style.split(";"):
        name, sep, value = declaration.partition(":")
        if sep:
            value = value.replace("!important", "").strip()
            if value:
                out[name.strip().lower()] = value
    return out


@functools.lru_cache(maxsize=1024)
def parse_color(value: str | None) -> Rgb | None:
    """#rgb, #rrggbb, rgb()/rgba() (opaque only) or a common name as 0-255 channels; else None."""
    if not value:
        return None
    text = value.strip().lower()
    text = NAMED.get(text, text)
    if text.startswith("#"):
        digits = text[1:]
        if len(digits) in (3, 4):
            digits = "".join(c * 2 for c in digits[:3])
        elif len(digits) == 8 and digits[6:] != "ff":
            return None   # translucent: the colour seen depends on what lies below
        if len(digits) not in (6, 8) or not all(c in "0123456789abcdef" for c in digits):
            return None
        return tuple(int(digits[i:i + 2], 16) for i in (0, 2, 4))  # type: ignore[return-value]
    match = re.fullmatch(r"rgba?\(\s*([\d.]+)[\s,]+([\d.]+)[\s,]+([\d.]+)(?:\s*[,/]\s*([\d.]+%?))?\s*\)", text)
    if match:
        alpha = match.group(4)
        if alpha is not None and float(alpha.rstrip("%")) < (100 if alpha.endswith("%") else 1):
            return None
        return tuple(min(255.0, float(match.group(i))) for i in (1, 2, 3))  # type: ignore[return-value]
    return None


def background_color(style: dict[str, str], bgcolor: str | None) -> Rgb | None:
    """The element's own background colour: background-color, a colour in `background`, bgcolor."""
    if "background-color" in style:
        return parse_color(style["background-color"])
    if "background" in style:
        for token in _COLOR_TOKEN.findall(style["background"]):
            color = parse_color(token)
            if color is not None:
                return color
    return parse_color(bgcolor)


def luminance(rgb: Rgb) -> float:
    """WCAG 2 relative luminance of an sRGB colour."""
    def channel(c: float) -> float:
        c /= 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4
    r, g, b = (channel(c) for c in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


@functools.lru_cache(maxsize=1024)
def contrast_ratio(a: Rgb, b: Rgb) -> float:
    """WCAG 2 contrast ratio, 1 to 21."""
    la, lb = sorted((luminance(a), luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


@functools.lru_cache(maxsize=1024)
def unsupported(style_attribute: str, bgcolor: str | None = None) -> tuple[str, ...]:
    """What mail clients drop from one element's inline style with no fallback on that element."""
    style = parse_style(style_attribute)
    found = []
    if style.get("position", "static") not in ("static", "inherit", "initial"):
        found.append("position is dropped by Gmail and ignored by Outlook for Windows; "
                     "lay out with tables")
    display = style.get("display", "")
    if display in ("flex", "inline-flex", "grid", "inline-grid"):
        found.append(f"display:{display} is ignored by Outlook for Windows (and grid by Gmail); "
                     "lay out with tables")
    if any(name.startswith("--") or "var(" in value for name, value in style.items()):
        found.append("CSS variables (var(--x)) are dropped by Gmail, Outlook and Yahoo; write the values")
    image = style.get("background-image", "") + style.get("background", "")
    if _URL_OR_GRADIENT.search(image) and background_color(style, bgcolor) is None:
        found.append("a background image without a background-color or bgcolor: Outlook for Windows "
                     "and clients that block images show nothing behind the text")
    if style.get("float", "none") != "none":
        found.append("float is ignored by Outlook for Windows; lay out with tables")
    family = style.get("font-family")
    if family:
        names = [f.strip().strip("'\"").lower() for f in family.split(",")]
        if not GENERIC_FONTS.intersection(names) and names[0] not in ("inherit", "initial"):
            found.append(f"font-family {family[:40]} has no generic fallback (serif, sans-serif...): "
                         "web fonts are dropped by Gmail and Outlook")
    return tuple(found)
