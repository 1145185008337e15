"""Desk accounts: add, list, disable, reset, remove; argon2 passwords; one-time set-password links.

A link's secret is 256 random bits, shown once (`mailer users add` / `reset` print
it) and stored only as its sha256, bound to one purpose, valid for 24 hours and
used at most once; issuing a new one voids the account's older links. No password
is ever printed or mailed. Disabling or removing an account, or changing its
password, deletes its sessions in the same transaction: they end at once. Using a
link also turns the account's TOTP second factor off (a lost phone): it is set up
again from the account page (at once, when an admin requires it).

The last active admin cannot be disabled, demoted or removed (here, so the CLI and
the desk's admin pages obey it alike): make another admin first.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from mailer.db import Database
from mailer.desk import audit
from mailer.errors import InputError
from mailer.models import DeskChallenge, DeskSession, DeskToken, DeskUser, utcnow
from mailer.people.subscriptions import normalize_email

ROLES = ("editor", "admin")
SET_PASSWORD = "set-password"
TOKEN_LIFETIME = timedelta(hours=24)
MIN_PASSWORD = 12
MAX_PASSWORD = 1024
_hasher = PasswordHasher()   # argon2id, the library's defaults (RFC 9106's low-memory choice)


class LinkError(InputError):
    """A set-password link that is unknown, used, expired or for another purpose."""


class NoAccount(InputError):
    """No desk account has this address."""


class AccountExists(InputError):
    """A desk account with this address exists already."""


class LastAdmin(InputError):
    """The change would leave the desk without an active admin."""


@dataclass(frozen=True)
class Account:
    id: int
    email: str
    role: str
    disabled: bool
    has_password: bool
    created_at: datetime
    last_login_at: datetime | None
    totp: bool = False

    @property
    def state(self) -> str:
        return "disabled" if self.disabled else "active" if self.has_password else "no password yet"


def _account(user: DeskUser) -> Account:
    return Account(user.id, user.email, user.role, user.disabled, bool(user.password_hash), user.created_at,
                   user.last_login_at, bool(user.totp_secret))


def token_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def needs_rehash(stored: str) -> bool:
    """True when *stored* was made with weaker parameters than the ones in force."""
    return _hasher.check_needs_rehash(stored)


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return _hasher.hash(secrets.token_urlsafe(16))


def verify_password(stored: str, password: str) -> bool:
    """argon2 verify; with no stored hash, verify against a dummy one so that the answer takes as long."""
    try:
        return _hasher.verify(stored or _dummy_hash(), password) and bool(stored)
    except (VerificationError, InvalidHashError):
        return False


def _find(session: Session, email: str) -> DeskUser:
    user = session.scalar(select(DeskUser).where(DeskUser.email_key == email.strip().casefold()))
    if user is None:
        raise NoAccount(f"no desk account {email.strip()[:80]!r} (see `mailer users list`)")
    return user


def check_role(role: str) -> str:
    if role not in ROLES:
        raise InputError(f"{role[:20]!r} is not a role (editor or admin)")
    return role


def _issue_link(session: Session, user: DeskUser) -> str:
    """A fresh set-password secret for *user*; the account's older unused links stop working."""
    now = utcnow()
    session.execute(delete(DeskToken).where(DeskToken.user_id == user.id, DeskToken.used_at.is_(None)))
    secret = secrets.token_urlsafe(32)
    session.add(DeskToken(token_hash=token_hash(secret), user_id=user.id, purpose=SET_PASSWORD,
                          created_at=now, expires_at=now + TOKEN_LIFETIME))
    return secret


def add_user(db: Database, email: str, role: str, *, actor: str = audit.CLI_ACTOR, ip: str = "") -> str:
    """Create an account without a password; return the secret of its set-password link."""
    check_role(role)
    address = normalize_email(email)
    with db.session() as session:
        if session.scalar(select(DeskUser.id).where(DeskUser.email_key == address.key)) is not None:
            raise AccountExists(f"desk account {address.email!r} exists already (`mailer users reset` for a new link)")
        user = DeskUser(email=address.email, email_key=address.key, role=role, password_hash="", disabled=False,
                        created_at=utcnow())
        session.add(user)
        session.flush()
        secret = _issue_link(session, user)
        audit.record(session, "user_add", actor=actor, target=address.key, ip=ip, detail=f"role={role}")
    return secret


def reset_user(db: Database, email: str, *, actor: str = audit.CLI_ACTOR, ip: str = "") -> str:
    """A new set-password link for *email*. The password in force works until the link is used; a
    disabled account is enabled again, without its old password (only the link logs it in)."""
    with db.session() as session:
        user = _find(session, email)
        detail = ""
        if user.disabled:
            user.disabled, user.password_hash, detail = False, "", "re-enabled"
        secret = _issue_link(session, user)
        audit.record(session, "user_reset", actor=actor, target=user.email_key, ip=ip, detail=detail)
    return secret


def _keep_an_admin(session: Session, user: DeskUser, doing: str) -> None:
    """InputError when *user* is the last active admin (disabling, demoting or removing it would leave
    the desk without one)."""
    if user.role != "admin" or user.disabled:
        return
    admins = session.scalar(select(func.count()).select_from(DeskUser).where(
        DeskUser.role == "admin", DeskUser.disabled.is_(False))) or 0
    if admins <= 1:
        raise LastAdmin(f"{user.email} is the last active admin and cannot be {doing}: make another "
                         "account an admin first")


def disable_user(db: Database, email: str, *, actor: str = audit.CLI_ACTOR, ip: str = "") -> int:
    """Disable the account, end its sessions and void its links; returns how many sessions ended."""
    with db.session() as session:
        user = _find(session, email)
        _keep_an_admin(session, user, "disabled")
        user.disabled = True
        ended = session.execute(delete(DeskSession).where(DeskSession.user_id == user.id)).rowcount or 0
        session.execute(delete(DeskToken).where(DeskToken.user_id == user.id))
        session.execute(delete(DeskChallenge).where(DeskChallenge.user_id == user.id))
        audit.record(session, "user_disable", actor=actor, target=user.email_key, ip=ip,
                     detail=f"sessions ended: {ended}")
    return ended


def enable_user(db: Database, email: str, *, actor: str = audit.CLI_ACTOR, ip: str = "") -> None:
    """Enable a disabled account again (its password, if it had one, works again)."""
    with db.session() as session:
        user = _find(session, email)
        user.disabled = False
        audit.record(session, "user_enable", actor=actor, target=user.email_key, ip=ip)


def set_role(db: Database, email: str, role: str, *, actor: str = audit.CLI_ACTOR, ip: str = "") -> None:
    """Make the account an editor or an admin (not the last active admin an editor)."""
    check_role(role)
    with db.session() as session:
        user = _find(session, email)
        if user.role == role:
            return
        if role != "admin":
            _keep_an_admin(session, user, "made an editor")
        user.role = role
        audit.record(session, "user_role", actor=actor, target=user.email_key, ip=ip, detail=f"role={role}")


def remove_user(db: Database, email: str, *, actor: str = audit.CLI_ACTOR, ip: str = "") -> None:
    """Delete the account, its sessions and links; the audit log keeps its address."""
    with db.session() as session:
        user = _find(session, email)
        _keep_an_admin(session, user, "removed")
        session.execute(delete(DeskSession).where(DeskSession.user_id == user.id))
        session.execute(delete(DeskChallenge).where(DeskChallenge.user_id == user.id))
        session.execute(delete(DeskToken).where(DeskToken.user_id == user.id))
        session.delete(user)
        audit.record(session, "user_remove", actor=actor, target=user.email_key, ip=ip)


def find_account(db: Database, email: str) -> Account:
    """The account of *email*; NoAccount when there is none."""
    with db.session() as session:
        return _account(_find(session, email))


def list_users(db: Database) -> list[Account]:
    with db.session() as session:
        return [_account(u) for u in session.scalars(select(DeskUser).order_by(DeskUser.email_key))]


def link_account(db: Database, secret: str) -> Account:
    """The account a valid set-password link is for; LinkError when it is not valid (nothing changes)."""
    with db.session() as session:
        return _account(_valid_link(session, secret)[1])


def _valid_link(session: Session, secret: str) -> tuple[DeskToken, DeskUser]:
    if not secret or len(secret) > 100:
        raise LinkError("this link is not valid")
    token = session.scalar(select(DeskToken).where(DeskToken.token_hash == token_hash(secret)))
    if token is None or token.purpose != SET_PASSWORD:
        raise LinkError("this link is not valid: ask an admin for a new one (`mailer users reset`)")
    if token.used_at is not None:
        raise LinkError("this link has been used already: ask an admin for a new one")
    if token.expires_at <= utcnow():
        raise LinkError("this link has expired (links last 24 hours): ask an admin for a new one")
    user = session.get(DeskUser, token.user_id)
    if user is None or user.disabled:
        raise LinkError("this link is not valid: the account is disabled")
    return token, user


def check_password(email: str, password: str) -> None:
    """InputError naming what is wrong with a new password."""
    if len(password) < MIN_PASSWORD:
        raise InputError(f"the password must be at least {MIN_PASSWORD} characters long")
    if len(password) > MAX_PASSWORD:
        raise InputError(f"the password must be at most {MAX_PASSWORD} characters long")
    if password.strip().casefold() == email.strip().casefold():
        raise InputError("the password must not be your email address")


def use_link(session: Session, secret: str, password: str, ip: str) -> DeskUser:
    """Set the password through a link, in *session*: the link is consumed (once, even under a race),
    every session of the account ends. LinkError or InputError leave everything as it was."""
    token, user = _valid_link(session, secret)
    check_password(user.email, password)
    now = utcnow()
    used = session.execute(update(DeskToken).where(DeskToken.id == token.id, DeskToken.used_at.is_(None))
                           .values(used_at=now)).rowcount
    if used != 1:
        raise LinkError("this link has been used already: ask an admin for a new one")
    user.password_hash = hash_password(password)
    user.password_at = now
    detail = "second factor turned off" if user.totp_secret else ""
    user.totp_secret, user.totp_pending, user.totp_last_step = "", "", None
    session.execute(delete(DeskSession).where(DeskSession.user_id == user.id))
    session.execute(delete(DeskChallenge).where(DeskChallenge.user_id == user.id))
    audit.record(session, "password_set", actor=user.email_key, target=user.email_key, ip=ip, detail=detail)
    return user
