"""Signed, purpose-bound tokens for the links in mails (itsdangerous).

Each purpose has its own salt, so a token minted for one purpose never
verifies for another. Unsubscribe and preferences tokens never expire;
confirm tokens do. Keys rotate: the newest key signs, every listed key verifies.
Tokens carry the subscriber's random ``uid``, never an address or a row id.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from functools import lru_cache

from itsdangerous import BadSignature, SignatureExpired, URLSafeSerializer, URLSafeTimedSerializer

from mailer.config import Settings, signing_keys
from mailer.errors import MailerError


class Purpose(Enum):
    CONFIRM = "confirm"
    UNSUBSCRIBE = "unsubscribe"
    PREFERENCES = "preferences"


EXPIRING = {Purpose.CONFIRM}


class TokenError(MailerError):
    """A token that does not verify for this purpose (tampered, foreign or unknown)."""


class TokenExpired(TokenError):
    """A token that verified but is older than its purpose allows."""


@dataclass(frozen=True)
class TokenData:
    purpose: Purpose
    subscriber_uid: str
    list_slug: str


@lru_cache(maxsize=32)
def _serializer(keys: tuple[str, ...], purpose: Purpose) -> URLSafeSerializer:
    # itsdangerous signs with the last key and verifies with all of them
    ordered = list(reversed(keys))
    salt = f"mailer.{purpose.value}.v1"
    if purpose in EXPIRING:
        return URLSafeTimedSerializer(ordered, salt=salt)
    return URLSafeSerializer(ordered, salt=salt)


def make_token(settings: Settings, purpose: Purpose, subscriber_uid: str, list_slug: str = "") -> str:
    """Sign (uid, list) for *purpose*."""
    return _serializer(tuple(signing_keys(settings)), purpose).dumps([subscriber_uid, list_slug])


def read_token(settings: Settings, purpose: Purpose, token: str, max_age_s: float | None = None) -> TokenData:
    """Verify *token* for *purpose*; raise TokenExpired or TokenError."""
    serializer = _serializer(tuple(signing_keys(settings)), purpose)
    try:
        if purpose in EXPIRING:
            age = settings.confirm_max_age_hours * 3600 if max_age_s is None else max_age_s
            payload = serializer.loads(token, max_age=age)  # type: ignore[call-arg]
        else:
            payload = serializer.loads(token)
    except SignatureExpired:
        raise TokenExpired("this link has expired") from None
    except (BadSignature, UnicodeError, ValueError):
        raise TokenError("this link is not valid") from None
    if (not isinstance(payload, list) or len(payload) != 2
            or not all(isinstance(p, str) for p in payload)):
        raise TokenError("this link is not valid")
    return TokenData(purpose, payload[0], payload[1])
