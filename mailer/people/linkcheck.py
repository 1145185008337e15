"""Check an unsubscribe or preferences link against the database: the one place links are verified.

A link proof (mailer.mail.tokens) is checked against the subscriber's stored link secret
(or, once they are erased, the one kept under their uid alone), so it needs no configured
key and works for ever; an erased person's link names nobody and changes nothing. A link
signed with the configured keys (mailed before link proofs) still verifies while one of
its keys is listed. May import models, mail.tokens and the floor.
"""

from __future__ import annotations

from dataclasses import replace

from sqlalchemy import select

from mailer.config import Settings
from mailer.db import Database
from mailer.mail.tokens import Purpose, TokenData, TokenError, parse_link_token, proof_matches, read_token
from mailer.models import ErasedLink, Subscriber


def _secret(db: Database, uid: str) -> str | None:
    """The link secret of the person *uid*, or of the erased person it was; None for nobody."""
    with db.session() as session:
        found = session.scalar(select(Subscriber.link_secret).where(Subscriber.uid == uid))
        if found is None:
            found = session.scalar(select(ErasedLink.link_secret).where(ErasedLink.uid == uid))
        return found


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
