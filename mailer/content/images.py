"""Images kept in the issue folder: checked, sized, and linked by their public address.

A report may show `images/photo.jpg` (a path relative to the issue folder, in Markdown or the
`image` front matter). Each such file is checked with Pillow (JPEG, PNG, GIF or WebP; SVG is
refused: most mail clients don't show it and it can carry script), must lie inside the issue
folder, gets width and height (at most 600 px wide, as the layout), and is linked as
`<base_url>/media/<issue>/<hash>-<name>`: `publish` copies it there (the `media_dir` setting,
served by `mailer serve`) when the issue is previewed or sent. Over 1 MB is a warning, over 5 MB
an error, each naming the report.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

from mailer.config import Settings

WARN_BYTES = 1_000_000
MAX_BYTES = 5_000_000
MAX_WIDTH = 600
FORMATS = {"JPEG": "jpg", "PNG": "png", "GIF": "gif", "WEBP": "webp"}
_IMG = re.compile(r"<img\b[^>]*>", re.IGNORECASE)
_SRC = re.compile(r'\bsrc="([^"]*)"')


@dataclass(frozen=True)
class IssueImage:
    """One local image of an issue: where it is and the name it is published under."""

    source: Path
    name: str          # <sha256 prefix>-<file name>: a new version of a photo gets a new address
    width: int
    height: int
    target: Path       # where it is published: <media_dir>/<issue>/<name>


@dataclass
class ImageCheck:
    images: dict[str, IssueImage]
    errors: list[str]
    warnings: list[str]


def is_local(src: str) -> bool:
    """Whether an image source is a path in the issue folder rather than a URL."""
    parts = urlsplit(src)
    return not parts.scheme and not parts.netloc and not src.startswith(("/", "#")) and bool(src.strip())


def media_url(settings: Settings, slug: str, name: str) -> str:
    return f"{settings.base_url.rstrip('/')}/media/{quote(slug)}/{quote(name)}"


def check_image(settings: Settings, folder: Path, src: str, report_name: str,
                found: ImageCheck) -> IssueImage | None:
    """Check one local image; record errors and warnings on *found* and return it when usable."""
    from PIL import Image, UnidentifiedImageError

    if src in found.images:
        return found.images[src]
    path = folder / unquote(src)
    try:
        real = path.resolve()
    except (OSError, RuntimeError):
        real = path
    if not real.is_relative_to(folder.resolve()):
        found.errors.append(f"{report_name}: image {src[:80]!r} lies outside the issue folder; copy it into "
                            "images/")
        return None
    if not real.is_file():
        found.errors.append(f"{report_name}: image {src[:80]!r} not found in {folder.name}/")
        return None
    size = real.stat().st_size
    if size > MAX_BYTES:
        found.errors.append(f"{report_name}: image {src[:80]!r} is {size / 1e6:.1f} MB; mail needs images "
                            "under 5 MB (aim for 200 KB: 1200 px wide, JPEG)")
        return None
    data = real.read_bytes()
    try:
        with Image.open(real) as img:
            kind = img.format or ""
            img.verify()
            width, height = img.size
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        hint = "SVG is not shown by most mail clients: export it as PNG" if data.lstrip()[:5] in (b"<?xml", b"<svg ") \
            else "not a JPEG, PNG, GIF or WebP image"
        found.errors.append(f"{report_name}: image {src[:80]!r}: {hint}")
        return None
    if kind not in FORMATS:
        found.errors.append(f"{report_name}: image {src[:80]!r} is {kind or 'an unknown format'}; use JPEG, "
                            "PNG, GIF or WebP")
        return None
    if size > WARN_BYTES:
        found.warnings.append(f"{report_name}: image {src[:80]!r} is {size / 1e6:.1f} MB; readers on phones "
                              "will wait for it (aim for 200 KB)")
    if width > MAX_WIDTH:
        width, height = MAX_WIDTH, max(1, round(height * MAX_WIDTH / width))
    digest = hashlib.sha256(data).hexdigest()[:12]
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", real.stem).strip("-.") or "image"
    name = f"{digest}-{stem}.{FORMATS[kind]}"
    image = IssueImage(real, name, width, height, settings.path(settings.media_dir) / folder.name / name)
    found.images[src] = image
    return image


def check_images(html: str, settings: Settings, folder: Path, report_name: str, found: ImageCheck) -> None:
    """Check every local image of one report's *html*; errors and warnings name *report_name*."""
    for tag in _IMG.findall(html):
        src_match = _SRC.search(tag)
        if src_match is not None and is_local(src_match.group(1)):
            check_image(settings, folder, src_match.group(1), report_name, found)


def link_images(html: str, settings: Settings, folder: Path, found: ImageCheck) -> str:
    """The issue's final (inlined) *html* with each checked local image's src made its public
    address, and width/height set: after premailer, which would turn them into height="auto"."""

    def one(match: re.Match[str]) -> str:
        tag = match.group(0)
        src_match = _SRC.search(tag)
        image = found.images.get(src_match.group(1)) if src_match is not None else None
        if image is None:
            return tag
        tag = re.sub(r'\s(?:width|height)="[^"]*"', "", tag)
        url = media_url(settings, folder.name, image.name)
        return tag.replace(src_match.group(0), f'src="{url}" width="{image.width}" height="{image.height}"', 1)

    return _IMG.sub(one, html)


def publish(images: tuple[IssueImage, ...], into: Path | None = None) -> None:
    """Copy *images* to where they are published (or into the folder *into*); a file that is
    there already stays (its name holds its hash)."""
    for image in images:
        dest = into / image.name if into is not None else image.target
        if dest.exists():
            continue
        folder = dest.parent
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".part-")
        os.close(fd)
        shutil.copyfile(image.source, tmp)
        os.replace(tmp, dest)       # readers never see half a file
