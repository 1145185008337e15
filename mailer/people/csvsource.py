"""Reading a subscriber CSV defensively: header, delimiter, encoding, line limits.

Yields one `Row` per record with the line it starts on, or the reason it cannot be
read, so that the importer can report each bad row and keep going. Memory stays
bounded: lines are read with a size limit and an over-long line is skipped, not held.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Callable, Iterator

from mailer.errors import InputError

EMAIL_HEADERS = ("email", "e-mail", "mail", "email address", "e-mail address")
NAME_HEADERS = ("name", "full name", "display name")
DELIMITERS = (",", ";")
MAX_LINE = 1 << 20  # characters; a longer line is rejected without being held in memory
SAMPLE = 64 * 1024


@dataclass(slots=True)
class Row:
    """One record: where it starts, its email and name, other columns, or why it is unreadable."""

    line: int
    email: str = ""
    name: str = ""
    attributes: dict[str, str] = field(default_factory=dict)
    error: str = ""


class _Lines:
    """Physical lines of a text file, each at most MAX_LINE characters.

    An over-long line is drained in chunks and replaced by an empty line; its
    number is remembered so the record holding it can be rejected.
    """

    def __init__(self, f: IO[str]) -> None:
        self.f = f
        self.count = 0
        self.too_long: set[int] = set()

    def __iter__(self) -> Iterator[str]:
        while True:
            line = self.f.readline(MAX_LINE)
            if not line:
                return
            self.count += 1
            if len(line) >= MAX_LINE and not line.endswith(("\n", "\r")):
                self.too_long.add(self.count)
                while True:
                    rest = self.f.readline(MAX_LINE)
                    if not rest or rest.endswith(("\n", "\r")):
                        break
                yield "\n"
                continue
            yield line


def _check_sample(path: Path, sample: bytes) -> None:
    if b"\x00" in sample:
        raise InputError(f"{path}: binary data, not a CSV text file")
    first = sample.split(b"\n", 1)[0] if b"\n" in sample else sample[:-4]
    try:
        first.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InputError(f"{path}: line 1: not UTF-8 text; save the file as UTF-8 (CSV UTF-8)") from None


def _header(path: Path, line: str) -> tuple[str, list[str]]:
    """Pick the delimiter that yields an email column; return it and the lower-cased names."""
    best: list[str] = []
    for delimiter in DELIMITERS:
        names = [h.strip().lower() for h in next(csv.reader([line], delimiter=delimiter), [])]
        if any(n in EMAIL_HEADERS for n in names):
            dupes = sorted({n for n in names if n and names.count(n) > 1})
            if dupes:
                raise InputError(f"{path}: line 1: column {dupes[0]!r} appears twice in the header")
            return delimiter, names
        if len(names) > len(best):
            best = names
    shown = ", ".join(repr(n) for n in best[:8]) or "nothing"
    hint = " (is the delimiter a comma or a semicolon?)" if len(best) <= 1 and line.strip() else ""
    raise InputError(f"{path}: line 1: no email column (expected one of "
                     f"{', '.join(EMAIL_HEADERS[:3])}); the header has {shown}{hint}")


def read_rows(path: Path, f: io.BufferedReader,
              on_header: Callable[[str], None] | None = None) -> Iterator[Row]:
    """Rows of the CSV open as binary *f*; raise InputError for a file that is not a CSV at all.

    *on_header* sees the header line first (mailer.people.importformats recognises exports by it).
    """
    _check_sample(path, f.peek(SAMPLE)[:SAMPLE])
    text = io.TextIOWrapper(f, encoding="utf-8-sig", errors="surrogateescape", newline="")
    try:
        lines = _Lines(text)
        it = iter(lines)
        header_line = next(it, "")
        if not header_line.strip():
            raise InputError(f"{path}: empty file, expected a header row with an email column")
        if lines.too_long:
            raise InputError(f"{path}: line 1: header longer than {MAX_LINE} characters")
        if on_header is not None:
            on_header(header_line)
        delimiter, names = _header(path, header_line)
        email_col = next(i for i, n in enumerate(names) if n in EMAIL_HEADERS)
        name_col = next((i for i, n in enumerate(names) if n in NAME_HEADERS), None)
        csv.field_size_limit(MAX_LINE)
        reader = csv.reader(it, delimiter=delimiter)
        attribute_cols = [(i, n) for i, n in enumerate(names) if i != email_col and i != name_col and n]
        while True:
            start = lines.count + 1
            try:
                fields = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                yield Row(start, error=f"unreadable CSV record: {exc}")
                continue
            if any(n in lines.too_long for n in range(start, lines.count + 1)):
                yield Row(start, error=f"line longer than {MAX_LINE} characters")
                continue
            if not fields or (len(fields) == 1 and not fields[0].strip()):
                continue
            yield _row(start, fields, len(names), email_col, name_col, attribute_cols)
    finally:
        text.detach()  # the caller owns (and closes) f


def _row(line: int, fields: list[str], width: int, email_col: int, name_col: int | None,
         attribute_cols: list[tuple[int, str]]) -> Row:
    text = "".join(fields)
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:  # undecodable bytes were kept as surrogates
            return Row(line, error="not UTF-8 text")
    if len(fields) > width and any(v.strip() for v in fields[width:]):
        return Row(line, error=f"{len(fields)} fields but the header has {width} "
                               "(unquoted delimiter in a value?)")
    if len(fields) < width:
        fields = fields + [""] * (width - len(fields))
    attributes = {}
    for i, name in attribute_cols:
        value = fields[i].strip()
        if value:
            attributes[name] = value
    return Row(line, fields[email_col], fields[name_col] if name_col is not None else "", attributes)


@dataclass
class Sniffed:
    """What an import will make of a CSV: its columns and how each is used, and its first rows."""

    delimiter: str
    columns: list[str]                 # the header's names, lower-cased, as the import reads them
    email_column: int
    name_column: int | None
    rows: list[Row]


def sniff(path: Path, f: io.BufferedReader, limit: int = 5,
          on_header: Callable[[str], None] | None = None) -> Sniffed:
    """The header and the first *limit* rows of the CSV open as binary *f*, read as `read_rows` reads
    them (the desk's import preview); InputError as the import would raise it."""
    header: list[str] = []

    def seen(line: str) -> None:
        header.append(line)
        if on_header is not None:
            on_header(line)

    rows: list[Row] = []
    reader = read_rows(path, f, seen)
    try:
        for row in reader:
            rows.append(row)
            if len(rows) >= limit:
                break
    finally:
        reader.close()
    delimiter, names = _header(path, header[0])
    email_col = next(i for i, n in enumerate(names) if n in EMAIL_HEADERS)
    name_col = next((i for i, n in enumerate(names) if n in NAME_HEADERS), None)
    return Sniffed(delimiter, names, email_col, name_col, rows)
