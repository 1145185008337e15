"""Tokens: purpose-bound (C3), confirm expiry (C3), unsubscribe forever and across key rotation (B6, D5)."""

from __future__ import annotations

import time

import pytest

from mailer.errors import ConfigError
from mailer.mail.tokens import Purpose, TokenError, TokenExpired, make_token, read_token

DAY = 86400


def shift_clock(monkeypatch: pytest.MonkeyPatch, seconds: float) -> None:
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + seconds)


@pytest.mark.parametrize("minted, used", [
    (Purpose.UNSUBSCRIBE, Purpose.CONFIRM), (Purpose.CONFIRM, Purpose.UNSUBSCRIBE),
    (Purpose.PREFERENCES, Purpose.UNSUBSCRIBE), (Purpose.UNSUBSCRIBE, Purpose.PREFERENCES),
])
def test_a_token_of_one_purpose_is_refused_for_another_C3_D5(settings, minted, used):
    token = make_token(settings, minted, "uid-1", "news")
    assert read_token(settings, minted, token).subscriber_uid == "uid-1"
    with pytest.raises(TokenError):
        read_token(settings, used, token)


def test_token_carries_uid_and_list_not_the_address_A5(settings):
    token = make_token(settings, Purpose.UNSUBSCRIBE, "uid-1", "news")
    data = read_token(settings, Purpose.UNSUBSCRIBE, token)
    assert (data.purpose, data.subscriber_uid, data.list_slug) == (Purpose.UNSUBSCRIBE, "uid-1", "news")
    assert "@" not in token


def test_confirm_token_expires_C3(settings, monkeypatch):
    shift_clock(monkeypatch, -(settings.confirm_max_age_hours + 1) * 3600)
    old = make_token(settings, Purpose.CONFIRM, "uid-1", "news")
    monkeypatch.undo()
    fresh = make_token(settings, Purpose.CONFIRM, "uid-1", "news")
    assert read_token(settings, Purpose.CONFIRM, fresh).subscriber_uid == "uid-1"
    with pytest.raises(TokenExpired, match="expired"):
        read_token(settings, Purpose.CONFIRM, old)


def test_unsubscribe_token_still_verifies_400_days_later_B6(settings, monkeypatch):
    token = make_token(settings, Purpose.UNSUBSCRIBE, "uid-1", "news")
    shift_clock(monkeypatch, 400 * DAY)
    assert read_token(settings, Purpose.UNSUBSCRIBE, token).subscriber_uid == "uid-1"


def test_unsubscribe_token_survives_key_rotation_B6(settings, monkeypatch):
    shift_clock(monkeypatch, -400 * DAY)
    before = settings.replace(secret_keys=("old-key",))
    token = make_token(before, Purpose.UNSUBSCRIBE, "uid-1", "news")
    monkeypatch.undo()
    after = settings.replace(secret_keys=("new-key", "old-key"))
    assert read_token(after, Purpose.UNSUBSCRIBE, token).list_slug == "news"
    newer = make_token(after, Purpose.UNSUBSCRIBE, "uid-1", "news")
    assert newer != token and read_token(after, Purpose.UNSUBSCRIBE, newer).subscriber_uid == "uid-1"
    with pytest.raises(TokenError):  # signed with the new key, which the old settings do not know
        read_token(before, Purpose.UNSUBSCRIBE, newer)
    with pytest.raises(TokenError):  # once the old key is dropped, its tokens stop verifying
        read_token(settings.replace(secret_keys=("new-key",)), Purpose.UNSUBSCRIBE, token)


@pytest.mark.parametrize("purpose", list(Purpose))
def test_tampered_or_foreign_tokens_are_refused_B4(settings, purpose):
    token = make_token(settings, purpose, "uid-1", "news")
    flipped = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
    for bad in (flipped, token + "x", "", "not-a-token", token.replace(".", "", 1)):
        with pytest.raises(TokenError):
            read_token(settings, purpose, bad)
    with pytest.raises(TokenError):
        read_token(settings.replace(secret_keys=("someone-elses-key",)), purpose, token)


def test_no_signing_key_is_a_config_error(settings):
    with pytest.raises(ConfigError, match="MAILER_SECRET_KEYS"):
        make_token(settings.replace(secret_keys=()), Purpose.UNSUBSCRIBE, "uid-1")
