"""Cleaning of every user-supplied header value (STANDARDS D1, CVE-2024-6923)."""

from __future__ import annotations

import re
import unicodedata

# RFC 2047 encoded words: =?charset?Q|B?text?=
_ENCODED_WORD = re.compile(r"=\?[^?\s]*\?[QqBb]\?[^?]*\?=")
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u0085\u2028\u2029]")


def clean_header(value: str, max_length: int = 900) -> str:
    """One line of header text: no CR/LF or other controls, no encoded words, bounded.

    Encoded words are neutralised by breaking the ``=?`` opener, so a value
    can never smuggle a newline through RFC 2047 decoding.
    """
    value = unicodedata.normalize("NFC", str(value))
    value = _CONTROL.sub(" ", value)
    value = _ENCODED_WORD.sub(lambda m: m.group(0).replace("=?", "= ?"), value)
    value = value.replace("=?", "= ?")
    value = " ".join(value.split())
    return value[:max_length]


def has_header_trick(value: str) -> bool:
    """True when *value* holds a line break, control character or encoded word."""
    return bool(_CONTROL.search(value) or "=?" in value)
