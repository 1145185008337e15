"""An issue's images as the desk adds, serves and removes them: files in images/, kept once Pillow has
recognised them as JPEG, PNG, GIF or WebP (an SVG is refused: it can carry script, and most mail
clients do not show it); reports use them as `![what it shows](images/NAME)`.
"""

from __future__ import annotations

import io
from pathlib import Path

from mailer.content.images import FORMATS, MAX_BYTES
from mailer.desk.issuefiles import FileExists, NoSuchFile, upload_name
from mailer.desk.issues import IssueFieldError, folder_lock

__all__ = ["IMAGE_SUFFIXES", "MAX_BYTES", "add_image", "image_kind", "image_names", "image_path", "image_type",
           "remove_image"]
IMAGE_SUFFIXES = {"JPEG": (".jpg", ".jpeg"), "PNG": (".png",), "GIF": (".gif",), "WEBP": (".webp",)}


def image_names(folder: Path) -> list[str]:
    images = folder / "images"
    if not images.is_dir():
        return []
    return sorted(p.name for p in images.iterdir() if p.is_file() and not p.name.startswith("."))


def add_image(folder: Path, filename: str, data: bytes) -> str:
    """Save an uploaded image into images/ under a safe name, once Pillow has recognised it."""
    stem, suffix = upload_name(filename, "image")
    if suffix == ".svg":
        raise IssueFieldError("image", "image: SVG is refused (it can carry script, and most mail clients do not "
                                       "show it); export it as PNG")
    kind = image_kind(data, f"image {filename[:80]!r}")
    if suffix not in IMAGE_SUFFIXES[kind]:
        raise IssueFieldError("image", f"image {filename[:80]!r}: its content is {kind}, not {suffix}; rename it "
                                       f"{stem}{IMAGE_SUFFIXES[kind][0]}")
    name = f"{stem}{suffix}"
    target = folder / "images" / name
    with folder_lock(folder):
        if target.exists():
            raise FileExists(f"image: images/{name} exists already; rename the file to upload it too")
        target.parent.mkdir(exist_ok=True)
        fd_path = target.with_name(f".{name}.part")
        fd_path.write_bytes(data)
        fd_path.replace(target)
    return name


def image_kind(data: bytes, label: str) -> str:
    """Pillow's name of the image in *data* (JPEG, PNG, GIF, WEBP); IssueFieldError naming *label* for
    anything else, SVG included, or over the size limit."""
    from PIL import Image, UnidentifiedImageError

    if len(data) > MAX_BYTES:
        raise IssueFieldError("image", f"image: at most {MAX_BYTES // 1_000_000} MB (aim for 200 KB)")
    head = data[:512].lstrip().lower()
    if head.startswith((b"<?xml", b"<svg", b"<!doctype svg")) or b"<svg" in head:
        raise IssueFieldError("image", "image: SVG is refused (it can carry script, and most mail clients do not "
                                       "show it); export it as PNG")
    try:
        with Image.open(io.BytesIO(data)) as img:
            kind = img.format or ""
            img.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        raise IssueFieldError("image", f"{label}: not a JPEG, PNG, GIF or WebP image") from None
    if kind not in FORMATS:
        raise IssueFieldError("image", f"{label} is {kind}; use JPEG, PNG, GIF or WebP")
    return kind


def remove_image(folder: Path, name: str) -> None:
    """Delete images/<name> (a report that still shows it then fails the compose check, naming it)."""
    with folder_lock(folder):
        image_path(folder, name).unlink()


def image_path(folder: Path, name: str) -> Path:
    """images/<name> of the issue; NoSuchFile for anything else."""
    path = folder / "images" / name
    if name not in image_names(folder) or not path.resolve().is_relative_to(folder.resolve()):
        raise NoSuchFile(f"no image {name[:80]!r} in this issue")     # a symbolic link out is not ours
    return path


def image_type(name: str) -> str:
    """The MIME type of an image in images/, by its (checked) extension."""
    suffix = name.rpartition(".")[2].lower()
    return {"jpg": "image/jpeg", "jpeg": "image/jpeg", "png": "image/png", "gif": "image/gif",
            "webp": "image/webp"}.get(suffix, "application/octet-stream")
