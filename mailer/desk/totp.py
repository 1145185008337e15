"""The desk's second factor: TOTP (RFC 6238, 6 digits, 30 s), sealed secrets, the admin's requirement.

An account turns TOTP on from its account page: a new secret is kept *pending* and
shown (QR code and text) until a code from the app confirms it. The secret is stored
sealed with AES-256-GCM under a key derived (HKDF-SHA256) from the app's hash key,
the one key that never rotates (secrets.toml: "Never change hash_key"); the
account's id is the associated data, so a sealed secret copied to another row does
not open. A code is accepted for the current step or one either side (clock drift),
and at most once: the step it was taken for is stored, and a code for that step or
an earlier one is refused (replay). Turning it off needs the password and a code.
`mailer users reset` links turn it off when used (a lost phone).

`required` is the desk-wide setting an admin toggles: then an account without TOTP
is sent to set it up after login and can do nothing else until it has.
"""

from __future__ import annotations

import base64
import os
import time

import pyotp
import segno
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from mailer.config import Settings
from mailer.db import Database
from mailer.desk import accounts, audit
from mailer.errors import ConfigError, InputError
from mailer.models import DeskSetting, DeskUser

STEP = 30
REQUIRE = "require_totp"
SEALED = "v1:"
CODE_TEXT = "That code is not right (or was used already): type the 6 digits your app shows now."


class CodeRefused(InputError):
    """A TOTP code that is malformed, wrong, or used already in its 30-second window."""


class StillRequired(InputError):
    """TOTP cannot be turned off while an admin requires it of every account."""


def _key(settings: Settings) -> bytes:
    if not settings.hash_key:
        raise ConfigError("the desk's second factor needs the hash key (MAILER_HASH_KEY or secrets.toml)")
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                info=b"mailer.desk.totp.v1").derive(settings.hash_key.encode())


def seal(settings: Settings, user_id: int, secret: str) -> str:
    """The TOTP *secret* of account *user_id*, encrypted and authenticated (AES-GCM), as text."""
    nonce = os.urandom(12)
    sealed = AESGCM(_key(settings)).encrypt(nonce, secret.encode(), f"desk-totp:{user_id}".encode())
    return SEALED + base64.urlsafe_b64encode(nonce + sealed).decode()


def unseal(settings: Settings, user_id: int, stored: str) -> str:
    """The secret `seal` sealed; ConfigError when it does not open (another hash key, or tampered)."""
    try:
        raw = base64.urlsafe_b64decode(stored.removeprefix(SEALED).encode())
        return AESGCM(_key(settings)).decrypt(raw[:12], raw[12:], f"desk-totp:{user_id}".encode()).decode()
    except (InvalidTag, ValueError) as exc:
        raise ConfigError("a desk account's TOTP secret does not open with this hash key: "
                          "`mailer users reset EMAIL` gives its owner a link that turns TOTP off") from exc


def _step_of(secret: str, code: str, now: float | None = None) -> int | None:
    """The 30-second step (current, or one either side) whose code *code* is; None when none."""
    code = "".join(code.split())
    if len(code) != 6 or not code.isdigit():
        return None
    now = time.time() if now is None else now
    totp = pyotp.TOTP(secret, interval=STEP)
    current = int(now // STEP)
    for step in (current, current - 1, current + 1):
        if totp.verify(code, for_time=step * STEP, valid_window=0):
            return step
    return None


def take_code(session: Session, settings: Settings, user: DeskUser, code: str) -> bool:
    """True when *code* is the account's code for a step not used before; the step is then used up
    (an atomic update, so two racing requests with one code cannot both pass)."""
    if not user.totp_secret:
        return False
    step = _step_of(unseal(settings, user.id, user.totp_secret), code or "")
    if step is None:
        return False
    taken = session.execute(update(DeskUser).where(
        DeskUser.id == user.id, or_(DeskUser.totp_last_step.is_(None), DeskUser.totp_last_step < step))
        .values(totp_last_step=step)).rowcount
    return taken == 1


def required(db: Database) -> bool:
    """Whether an admin requires TOTP of every account."""
    with db.session() as session:
        return session.scalar(select(DeskSetting.value).where(DeskSetting.name == REQUIRE)) == "1"


def set_required(db: Database, on: bool, *, actor: str, ip: str = "") -> None:
    with db.session() as session:
        row = session.get(DeskSetting, REQUIRE)
        if row is None:
            session.add(DeskSetting(name=REQUIRE, value="1" if on else "0"))
        else:
            row.value = "1" if on else "0"
        audit.record(session, "totp_required" if on else "totp_optional", actor=actor, ip=ip)


def _user(session: Session, user_id: int) -> DeskUser:
    user = session.get(DeskUser, user_id)
    if user is None or user.disabled:
        raise InputError("this account is gone or disabled")
    return user


def begin(db: Database, settings: Settings, user_id: int) -> None:
    """Keep a new secret pending for *user_id* (replacing one pending before); TOTP is not on yet."""
    with db.session() as session:
        user = _user(session, user_id)
        user.totp_pending = seal(settings, user.id, pyotp.random_base32())
        audit.record(session, "totp_setup", actor=user.email_key, target=user.email_key)


def cancel(db: Database, user_id: int) -> None:
    with db.session() as session:
        user = _user(session, user_id)
        user.totp_pending = ""
        audit.record(session, "totp_setup_cancel", actor=user.email_key, target=user.email_key)


def pending(db: Database, settings: Settings, user_id: int) -> str:
    """The secret being set up for *user_id* ('' when none)."""
    with db.session() as session:
        user = _user(session, user_id)
        return unseal(settings, user.id, user.totp_pending) if user.totp_pending else ""


def provisioning_uri(settings: Settings, email: str, secret: str) -> str:
    return pyotp.TOTP(secret, interval=STEP).provisioning_uri(name=email, issuer_name=f"{settings.group_name} desk")


def qr_data_uri(uri: str) -> str:
    """The QR code of *uri* as an SVG data: URL (an <img> the desk's CSP allows), black on white."""
    return segno.make(uri, error="m").svg_data_uri(scale=5, border=4, dark="#000", light="#fff")


def confirm(db: Database, settings: Settings, user_id: int, code: str, ip: str = "") -> None:
    """Turn TOTP on with the pending secret once *code* matches it; CodeRefused leaves it pending."""
    with db.session() as session:
        user = _user(session, user_id)
        if not user.totp_pending:
            raise InputError("no second factor is being set up: start again")
        step = _step_of(unseal(settings, user.id, user.totp_pending), code or "")
        if step is None:
            raise CodeRefused(CODE_TEXT)
        user.totp_secret = seal(settings, user.id, unseal(settings, user.id, user.totp_pending))
        user.totp_pending, user.totp_last_step = "", step
        audit.record(session, "totp_on", actor=user.email_key, target=user.email_key, ip=ip)


def turn_off(db: Database, settings: Settings, user_id: int, password: str, code: str, ip: str = "") -> None:
    """Turn TOTP off: the password and a fresh code are both needed (InputError/CodeRefused otherwise);
    refused while an admin requires TOTP."""
    if required(db):
        raise StillRequired("an admin requires two-step login on every account: it cannot be turned off")
    with db.session() as session:
        user = _user(session, user_id)
        if not accounts.verify_password(user.password_hash, password or ""):
            failed = "password"
        elif not take_code(session, settings, user, code):
            failed = "code"
        else:
            failed = ""
            user.totp_secret, user.totp_last_step = "", None
            audit.record(session, "totp_off", actor=user.email_key, target=user.email_key, ip=ip)
    if failed == "password":
        raise InputError("that is not your password")
    if failed == "code":
        raise CodeRefused(CODE_TEXT)
