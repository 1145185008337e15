"""Desk sessions: login (rate-limited), the session behind a cookie, logout, per-session CSRF tokens.

A session id is 256 random bits; the cookie holds it, the `desk_session` row only
its sha256, so a read of the database logs nobody in. Every login makes a new id
(no fixation). A session ends after 8 hours without a request or 7 days after
login, on logout, and when its account is disabled, removed or changes password.

Failed logins are counted in the audit log (so every process and a restart see
the same counts): after 5 failures for one account, or 20 from one address, within
15 minutes, logins for it are refused until the window has passed. The lock never
outlives the window, and a set-password link (`mailer users reset`) logs in
without the login form, so nobody can lock the admin out for good.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from mailer.config import Settings
from mailer.db import Database
from mailer.desk import accounts, audit, totp
from mailer.errors import InputError
from mailer.models import DeskChallenge, DeskSession, DeskSetting, DeskUser, utcnow

IDLE = timedelta(hours=8)
ABSOLUTE = timedelta(days=7)
TOUCH_EVERY = timedelta(minutes=1)   # last_seen is written at most this often
CHALLENGE = timedelta(minutes=5)        # the code step of a login with TOTP
WINDOW = timedelta(minutes=15)
MAX_FAILS_PER_ACCOUNT = 5
MAX_FAILS_PER_IP = 20
LOGIN_FAILED_TEXT = "That email address and password do not match an active account."
LOCKED_TEXT = "Too many failed logins: please wait 15 minutes and try again."
CHALLENGE_GONE_TEXT = "This login has timed out (5 minutes) or was finished already: please log in again."


class LoginFailed(InputError):
    """Wrong address, wrong password, no password yet or a disabled account: one answer for all."""


class LoginLocked(InputError):
    """Too many failed logins for this account or from this address, within the window."""


class ChallengeGone(InputError):
    """The code step of a login that is unknown, used or older than 5 minutes."""


@dataclass(frozen=True)
class Started:
    """What a right password gives: a session (`session`), or for an account with TOTP a challenge
    for the code step (`challenge`); the other is ''."""

    session: str = ""
    challenge: str = ""


@dataclass(frozen=True)
class DeskLogin:
    """Who a request's session belongs to."""

    user_id: int
    email: str
    role: str
    csrf: str
    totp: bool = False              # the account has TOTP on
    totp_due: bool = False          # an admin requires TOTP and this account has not set it up yet


def _hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def csrf_token(raw: str) -> str:
    """The session's CSRF token: derived from its secret id, so it needs no storage and dies with it."""
    return hashlib.sha256(b"mailer.desk.csrf:" + raw.encode()).hexdigest()


def csrf_valid(login: DeskLogin, token: str | None) -> bool:
    return bool(token) and hmac.compare_digest(login.csrf, str(token))


def start_session(session: Session, user: DeskUser, ip: str) -> str:
    """A new session for *user* in *session*; returns the raw id for the cookie."""
    raw = secrets.token_urlsafe(32)
    now = utcnow()
    session.add(DeskSession(id_hash=_hash(raw), user_id=user.id, created_at=now, last_seen=now,
                            expires_at=now + ABSOLUTE, ip=ip[:64]))
    user.last_login_at = now
    return raw


def _locked(session: Session, key: str, ip: str) -> bool:
    """Whether logins for *key* or from *ip* are locked now (recorded in the audit log when they are)."""
    since = utcnow() - WINDOW
    if (audit.failed_logins(session, since, target=key) >= MAX_FAILS_PER_ACCOUNT
            or audit.failed_logins(session, since, ip=ip) >= MAX_FAILS_PER_IP):
        audit.record(session, "login_locked", actor=key, target=key, ip=ip)
        return True
    return False


def login(db: Database, email: str, password: str, ip: str) -> Started:
    """Check the password; start a session, or a challenge when the account has TOTP on.
    LoginFailed or LoginLocked, audited."""
    key = (email or "").strip().casefold()[:320]
    with db.session() as session:
        locked = _locked(session, key, ip)
    if locked:
        raise LoginLocked(LOCKED_TEXT)
    with db.session() as session:
        user = session.scalar(select(DeskUser).where(DeskUser.email_key == key)) if key else None
        usable = user is not None and not user.disabled and bool(user.password_hash)
        matches = accounts.verify_password(user.password_hash if usable else "", password or "")  # type: ignore[union-attr]
        if not (usable and matches):
            why = ("unknown account" if user is None else "disabled" if user.disabled
                   else "no password set" if not user.password_hash else "wrong password")
            audit.record(session, audit.LOGIN_FAILED, actor=key, target=key, ip=ip, detail=why)
            failed = True
        else:
            failed = False
            assert user is not None
            if accounts.needs_rehash(user.password_hash):
                user.password_hash = accounts.hash_password(password)
            if user.totp_secret:
                raw = secrets.token_urlsafe(32)
                now = utcnow()
                session.execute(delete(DeskChallenge).where(DeskChallenge.expires_at <= now))   # old, unused ones
                session.add(DeskChallenge(id_hash=_hash(raw), user_id=user.id, created_at=now,
                                          expires_at=now + CHALLENGE))
                audit.record(session, "login_password", actor=key, target=key, ip=ip, detail="code due")
                started = Started(challenge=raw)
            else:
                started = Started(session=start_session(session, user, ip))
                audit.record(session, "login", actor=key, target=key, ip=ip)
    if failed:
        raise LoginFailed(LOGIN_FAILED_TEXT)
    return started


def _challenge(session: Session, raw: str | None) -> tuple[DeskChallenge, DeskUser] | None:
    if not raw or len(raw) > 100:
        return None
    row = session.execute(select(DeskChallenge, DeskUser).join(DeskUser, DeskUser.id == DeskChallenge.user_id)
                          .where(DeskChallenge.id_hash == _hash(raw))).first()
    if row is None or row[0].expires_at <= utcnow() or row[1].disabled or not row[1].totp_secret:
        return None
    return row[0], row[1]


def challenge_email(db: Database, raw: str | None) -> str | None:
    """The address a live challenge is for (the code page names it), or None."""
    with db.session() as session:
        found = _challenge(session, raw)
        return found[1].email if found else None


def login_code(db: Database, settings: Settings, raw: str | None, code: str, ip: str) -> str:
    """The code step: a right, unused code for a live challenge ends the challenge and starts a session
    (its raw id returned). ChallengeGone, LoginLocked, or LoginFailed (a wrong code, counted)."""
    with db.session() as session:
        found = _challenge(session, raw)
        key = found[1].email_key if found else ""
        locked = found is not None and _locked(session, key, ip)
        if locked and found is not None:
            session.delete(found[0])
    if found is None:
        raise ChallengeGone(CHALLENGE_GONE_TEXT)
    if locked:
        raise LoginLocked(LOCKED_TEXT)
    with db.session() as session:
        found = _challenge(session, raw)
        if found is None:
            raise ChallengeGone(CHALLENGE_GONE_TEXT)
        challenge, user = found
        if not totp.take_code(session, settings, user, code):
            audit.record(session, audit.LOGIN_FAILED, actor=key, target=key, ip=ip, detail="wrong code")
            failed = True
        else:
            failed = False
            if session.execute(delete(DeskChallenge).where(DeskChallenge.id == challenge.id)).rowcount != 1:
                raise ChallengeGone(CHALLENGE_GONE_TEXT)      # a racing request took it first
            started = start_session(session, user, ip)
            audit.record(session, "login", actor=key, target=key, ip=ip, detail="with code")
    if failed:
        raise LoginFailed(totp.CODE_TEXT)
    return started


def set_password_and_login(db: Database, secret: str, password: str, ip: str) -> str:
    """Use a set-password link: set the password, end the account's sessions, start a new one."""
    with db.session() as session:
        user = accounts.use_link(session, secret, password, ip)
        raw = start_session(session, user, ip)
        audit.record(session, "login", actor=user.email_key, target=user.email_key, ip=ip, detail="by link")
    return raw


def current(db: Database, raw: str | None) -> DeskLogin | None:
    """Who the session *raw* belongs to, or None when it is unknown, timed out or its account is disabled."""
    if not raw or len(raw) > 100:
        return None
    now = utcnow()
    with db.session() as session:
        row = session.execute(select(DeskSession, DeskUser).join(DeskUser, DeskUser.id == DeskSession.user_id)
                              .where(DeskSession.id_hash == _hash(raw))).first()
        if row is None:
            return None
        desk_session, user = row
        if user.disabled or now >= desk_session.expires_at or now >= desk_session.last_seen + IDLE:
            session.delete(desk_session)
            return None
        if now - desk_session.last_seen >= TOUCH_EVERY:
            desk_session.last_seen = now
        due = not user.totp_secret and session.scalar(
            select(DeskSetting.value).where(DeskSetting.name == totp.REQUIRE)) == "1"
        return DeskLogin(user.id, user.email, user.role, csrf_token(raw), bool(user.totp_secret), due)


def logout(db: Database, raw: str, ip: str) -> None:
    """End the session *raw* (nothing when it is gone already)."""
    with db.session() as session:
        row = session.execute(select(DeskSession, DeskUser).join(DeskUser, DeskUser.id == DeskSession.user_id)
                              .where(DeskSession.id_hash == _hash(raw))).first()
        if row is None:
            return
        session.execute(delete(DeskSession).where(DeskSession.id == row[0].id))
        audit.record(session, "logout", actor=row[1].email_key, target=row[1].email_key, ip=ip)
