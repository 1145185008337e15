"""Purpose-bound tokens for the links in mails: per-subscriber link proofs, and signed tokens.

Unsubscribe and preferences links carry a *link proof*, ``<uid>.<list slug>.<proof>``:
32 hex digits of HMAC-SHA256 under the subscriber's own random ``link_secret`` (stored
in the database, models.new_link_secret) over the purpose, uid and list. No configured
key is involved, so these links work for ever: across key rotation, a lost or replaced
key and a restore from backup (listmonk's per-subscriber UUID, made purpose-bound). The
web checks them against the database (mailer.people.linkcheck).

Confirm links, and the unsubscribe and preferences links mailed before link proofs,
are signed with the configured keys (itsdangerous): ``<uid>.<list slug>[.<timestamp>].<signature>``.
Each purpose has its own salt, so a token minted for one purpose never verifies for
another; confirm tokens expire, the others never do. Keys rotate: the newest key signs,
every listed key verifies. Both kinds carry the subscriber's public ``uid`` (its creation
time, as a UUIDv7 does, and 80 random bits: models.new_uid), never an address or a row id.
Signing is itsdangerous' `Signer` (HMAC) without a JSON or base64 layer.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from enum import Enum
from functools import lru_cache

from itsdangerous import BadSignature, SignatureExpired, Signer, TimestampSigner

from mailer.config import Settings, signing_keys
from mailer.errors import MailerError


class Purpose(Enum):
    CONFIRM = "confirm"
    UNSUBSCRIBE = "unsubscribe"
    PREFERENCES = "preferences"


EXPIRING = {Purpose.CONFIRM}
_PART = re.compile(r"[A-Za-z0-9_-]{1,64}")
_SLUG = re.compile(r"[A-Za-z0-9_-]{0,64}")


class TokenError(MailerError):
    """A token that does not verify for this purpose (tampered, foreign or unknown)."""


class TokenExpired(TokenError):
    """A token that verified but is older than its purpose allows."""


@dataclass(frozen=True)
class TokenData:
    purpose: Purpose
    subscriber_uid: str
    list_slug: str
    link_secret: str = ""     # the subscriber's, when the database was asked (mailer.people.linkcheck)


@lru_cache(maxsize=32)
def _signer(keys: tuple[str, ...], purpose: Purpose) -> Signer:
    # itsdangerous signs with the last key and verifies with all of them
    ordered = list(reversed(keys))
    salt = f"mailer.{purpose.value}.v2"
    if purpose in EXPIRING:
        return TimestampSigner(ordered, salt=salt, digest_method=hashlib.sha256)
    return Signer(ordered, salt=salt, digest_method=hashlib.sha256)


def make_token(settings: Settings, purpose: Purpose, subscriber_uid: str, list_slug: str = "") -> str:
    """Sign (uid, list) for *purpose*."""
    if not _PART.fullmatch(subscriber_uid) or not _SLUG.fullmatch(list_slug):
        raise ValueError("token parts must be URL-safe (uid) and a list slug")
    return _signer(tuple(signing_keys(settings)), purpose).sign(f"{subscriber_uid}.{list_slug}").decode()


def read_token(settings: Settings, purpose: Purpose, token: str, max_age_s: float | None = None) -> TokenData:
    """Verify *token* for *purpose*; raise TokenExpired or TokenError."""
    signer = _signer(tuple(signing_keys(settings)), purpose)
    try:
        if isinstance(signer, TimestampSigner):
            age = settings.confirm_max_age_hours * 3600 if max_age_s is None else max_age_s
            payload = signer.unsign(token, max_age=age)
        else:
            payload = signer.unsign(token)
        uid, _, slug = payload.decode("ascii").partition(".")
    except SignatureExpired:
        raise TokenExpired("this link has expired") from None
    except (BadSignature, UnicodeError, ValueError, TypeError):
        raise TokenError("this link is not valid") from None
    if not _PART.fullmatch(uid) or not _SLUG.fullmatch(slug):
        raise TokenError("this link is not valid")
    return TokenData(purpose, uid, slug)


_PROOF = re.compile(r"[0-9a-f]{32}")


@dataclass(frozen=True)
class LinkToken:
    """A token's parts before any check: a link proof (permanent) or an itsdangerous signature."""

    subscriber_uid: str
    list_slug: str
    proof: str

    @property
    def is_link_proof(self) -> bool:
        return bool(_PROOF.fullmatch(self.proof))


def link_proof(link_secret: str, purpose: Purpose, subscriber_uid: str, list_slug: str) -> str:
    """The proof that a link for (*purpose*, uid, list) was made with the subscriber's secret."""
    message = f"mailer.link.v1:{purpose.value}:{subscriber_uid}:{list_slug}".encode()
    return hmac.new(link_secret.encode(), message, hashlib.sha256).hexdigest()[:32]


def make_link_token(purpose: Purpose, subscriber_uid: str, link_secret: str, list_slug: str = "") -> str:
    """``<uid>.<slug>.<proof>`` for an unsubscribe or preferences link: no configured key needed."""
    if not _PART.fullmatch(subscriber_uid) or not _SLUG.fullmatch(list_slug):
        raise ValueError("token parts must be URL-safe (uid) and a list slug")
    return f"{subscriber_uid}.{list_slug}.{link_proof(link_secret, purpose, subscriber_uid, list_slug)}"


def parse_link_token(token: str) -> LinkToken:
    """Split a link token into its parts (TokenError when it has not their shape); verifies nothing."""
    parts = token.split(".")
    if len(parts) != 3 or not _PART.fullmatch(parts[0]) or not _SLUG.fullmatch(parts[1]) or not parts[2]:
        raise TokenError("this link is not valid")
    return LinkToken(parts[0], parts[1], parts[2])


def proof_matches(link_secret: str, purpose: Purpose, token: LinkToken) -> bool:
    """Whether *token*'s proof was made with *link_secret* for *purpose* (constant time)."""
    expected = link_proof(link_secret, purpose, token.subscriber_uid, token.list_slug)
    return hmac.compare_digest(expected, token.proof)
