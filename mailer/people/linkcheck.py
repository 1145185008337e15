"""Check an unsubscribe or preferences link against the database: the one place links are verified.

A link proof (mailer.mail.tokens) is checked against the subscriber's stored link secret,
so it needs no configured key and works for as long as the person's row exists (an
erased person's links answer like any invalid one: nothing is kept to check them). A link
signed with the configured keys (mailed before link proofs) still verifies while one of
its keys is listed. May import models, mail.tokens and the floor.
"""

from __future__ import annotations

from dataclasses import replace

from sqlalchemy import select

from mailer.config import Settings
from mailer.db import Database
from mailer.mail.tokens import Purpose, TokenData, TokenError, parse_link_token, proof_matches, read_token
from mailer.models import Subscriber


def _secret(db: Database, uid: str) -> str | None:
    with db.session() as session:
        return session.scalar(select(Subscriber.link_secret).where(Subscriber.uid == uid))


def check_link(db: Database, settings: Settings, purpose: Purpose, token: str) -> TokenData | None:
    """The link's data (with the subscriber's link secret, if they exist), or None when it does not verify."""
    try:
        parsed = parse_link_token(token)
    except TokenError:
        return None
    if parsed.is_link_proof:
        secret = _secret(db, parsed.subscriber_uid)
        if secret is None or not proof_matches(secret, purpose, parsed):
            return None
        return TokenData(purpose, parsed.subscriber_uid, parsed.list_slug, secret)
    if not settings.secret_keys:
        return None
    try:
        data = read_token(settings, purpose, token)
    except TokenError:
        return None
    return replace(data, link_secret=_secret(db, data.subscriber_uid) or "")
