"""The desk's second factor: TOTP set up with a QR code, the login's code step, replay, lockout,
turning it off, an admin requiring it of everyone, and `mailer users reset` turning it off.

Run on SQLite and PostgreSQL through the Flask test client; codes are computed with pyotp from the
secret the account page shows, for the current 30-second step or one either side.
"""

from __future__ import annotations

import re
import time
from datetime import timedelta

import pyotp
import pytest
from sqlalchemy import select, update

from mailer.config import Settings
from mailer.desk import accounts, totp
from mailer.errors import ConfigError
from mailer.models import DeskAudit, DeskChallenge, DeskUser, utcnow
from tests.desk_fixtures import ADMIN, EDITOR, PASSWORD, Desk, desk, text_of, web_app  # noqa: F401
from tests.web_fixtures import TOKEN_RE

COOKIE = "__Secure-mailer-desk"
CODE_COOKIE = COOKIE + "-code"


def code(secret: str, offset: int = 0) -> str:
    """The code of the step *offset* steps from now (each call strictly later than the one before
    when the offsets rise: a code taken is refused for its step and earlier ones)."""
    return pyotp.TOTP(secret).at((int(time.time() // 30) + offset) * 30)


def turn_on(desk: Desk, client) -> str:  # type: ignore[no-untyped-def]
    """Set TOTP up for *client*'s account through its account page; the secret."""
    assert desk.post(client, "/desk/account/totp/start", form_page="/desk/account").status_code == 303
    page = client.get("/desk/account")
    assert page.status_code == 200 and 'src="data:image/svg+xml' in page.text
    secret = re.search(r'<code class="secret">([A-Z2-7 ]+)</code>', page.text).group(1).replace(" ", "")
    done = desk.post(client, "/desk/account/totp/confirm", {"code": code(secret, -1)}, form_page="/desk/account")
    assert done.status_code == 303 and done.headers["Location"] == "/desk/account?done=on"
    return secret


def password_step(desk: Desk, client, email: str = EDITOR, password: str = PASSWORD):  # type: ignore[no-untyped-def]
    token = TOKEN_RE.search(client.get("/desk/login").text).group(1)
    return client.post("/desk/login", data={"csrf_token": token, "email": email, "password": password})


def code_step(client, value: str):  # type: ignore[no-untyped-def]
    page = client.get("/desk/login/code")
    assert page.status_code == 200, page.status_code
    token = TOKEN_RE.search(page.text).group(1)
    return client.post("/desk/login/code", data={"csrf_token": token, "code": value})


def fresh_client(desk: Desk):  # type: ignore[no-untyped-def]
    return desk.web.app.test_client()


def actions(desk: Desk) -> list[str]:
    with desk.web.db.session() as session:
        return list(session.scalars(select(DeskAudit.action).order_by(DeskAudit.id)))


def test_setup_shows_a_qr_code_and_needs_a_right_code_and_the_secret_is_stored_sealed(desk: Desk):
    page = desk.editor.get("/desk/account")
    assert page.status_code == 200 and "Set up two-step login" in page.text
    assert desk.post(desk.editor, "/desk/account/totp/start").status_code == 303
    shown = desk.editor.get("/desk/account").text
    secret = re.search(r'<code class="secret">([A-Z2-7 ]+)</code>', shown).group(1).replace(" ", "")
    wrong = desk.post(desk.editor, "/desk/account/totp/confirm", {"code": "000000" if code(secret) != "000000"
                                                                   else "111111"}, form_page="/desk/account")
    assert wrong.status_code == 422 and "not right" in wrong.text
    with desk.web.db.session() as session:
        user = session.scalar(select(DeskUser).where(DeskUser.email_key == EDITOR))
        assert user.totp_secret == "" and user.totp_pending.startswith("v1:") and secret not in user.totp_pending
    done = desk.post(desk.editor, "/desk/account/totp/confirm", {"code": code(secret)}, form_page="/desk/account")
    assert done.status_code == 303
    assert "Two-step login is on" in desk.editor.get("/desk/account?done=on").text
    with desk.web.db.session() as session:
        user = session.scalar(select(DeskUser).where(DeskUser.email_key == EDITOR))
        assert user.totp_pending == "" and user.totp_secret.startswith("v1:") and secret not in user.totp_secret
        assert totp.unseal(desk.web.settings, user.id, user.totp_secret) == secret
    assert "totp_on" in actions(desk)
    assert [a.totp for a in accounts.list_users(desk.web.db) if a.email == EDITOR] == [True]


def test_a_sealed_secret_opens_only_with_its_key_and_its_account(settings: Settings):
    sealed = totp.seal(settings, 7, "JBSWY3DPEHPK3PXP")
    assert totp.unseal(settings, 7, sealed) == "JBSWY3DPEHPK3PXP"
    with pytest.raises(ConfigError):
        totp.unseal(settings, 8, sealed)                               # copied to another account
    with pytest.raises(ConfigError):
        totp.unseal(settings.replace(hash_key="another key"), 7, sealed)
    with pytest.raises(ConfigError):
        totp.unseal(settings, 7, sealed[:-4] + ("AAAA" if not sealed.endswith("AAAA") else "BBBB"))


def test_login_with_totp_takes_a_code_step_and_a_code_only_once(desk: Desk):
    secret = turn_on(desk, desk.editor)
    client = fresh_client(desk)
    first = password_step(desk, client)
    assert first.status_code == 303 and first.headers["Location"] == "/desk/login/code"
    cookie = first.headers["Set-Cookie"]
    assert cookie.startswith(f"{CODE_COOKIE}=")
    for flag in ("HttpOnly", "SameSite=Strict", "Path=/desk/login", "Secure", "Max-Age=300"):
        assert flag in cookie, cookie
    assert client.get_cookie(COOKIE, path="/desk") is None             # no session for the password alone
    assert client.get("/desk/").headers["Location"] == "/desk/login"
    assert "jo@example.org" in client.get("/desk/login/code").text
    wrong = code_step(client, "12345")
    assert wrong.status_code == 401 and "not right" in wrong.text
    value = code(secret, 0)
    ok = code_step(client, value)
    assert ok.status_code == 303 and ok.headers["Location"] == "/desk/"
    assert client.get("/desk/").status_code == 200
    assert actions(desk)[-3:] == ["login_password", "login_failed", "login"]
    # the challenge was used once: its cookie no longer opens the code step
    again = fresh_client(desk)
    again.set_cookie(CODE_COOKIE, "x" * 43, path="/desk/login")
    assert again.get("/desk/login/code").headers["Location"] == "/desk/login"
    # the same code again, in a new login within its window: a replay, refused
    other = fresh_client(desk)
    assert password_step(desk, other).status_code == 303
    replay = code_step(other, value)
    assert replay.status_code == 401 and other.get("/desk/").status_code == 303
    assert code_step(other, code(secret, 1)).status_code == 303


def test_a_used_or_expired_challenge_is_refused(desk: Desk):
    secret = turn_on(desk, desk.editor)
    client = fresh_client(desk)
    password_step(desk, client)
    token = TOKEN_RE.search(client.get("/desk/login/code").text).group(1)
    with desk.web.db.session() as session:
        session.execute(update(DeskChallenge).values(expires_at=utcnow() - timedelta(seconds=1)))
    late = client.post("/desk/login/code", data={"csrf_token": token, "code": code(secret)})
    assert late.status_code == 410 and "timed out" in late.text
    assert client.get("/desk/").status_code == 303
    missing = fresh_client(desk).post("/desk/login/code", data={"csrf_token": token, "code": code(secret)})
    assert missing.status_code == 410


def test_wrong_codes_count_toward_the_lockout(desk: Desk):
    secret = turn_on(desk, desk.editor)
    client = fresh_client(desk)
    password_step(desk, client)
    for _ in range(5):
        assert code_step(client, "000000" if code(secret) != "000000" else "999999").status_code == 401
    locked = client.post("/desk/login/code", data={"csrf_token": TOKEN_RE.search(
        client.get("/desk/login").text).group(1), "code": code(secret, 1)})
    assert locked.status_code == 429 and "15 minutes" in locked.text
    assert client.get("/desk/login/code").headers["Location"] == "/desk/login"   # the challenge ended
    assert password_step(desk, fresh_client(desk)).status_code == 429     # the password step is locked too
    assert actions(desk).count("login_failed") == 5 and actions(desk)[-1] == "login_locked"


def test_turning_totp_off_needs_the_password_and_a_code(desk: Desk):
    secret = turn_on(desk, desk.editor)
    page = desk.editor.get("/desk/account")
    assert "Turn two-step login off" in page.text
    bad = desk.post(desk.editor, "/desk/account/totp/off", {"password": "wrong password!", "code": code(secret)},
                    form_page="/desk/account")
    assert bad.status_code == 422 and "not your password" in bad.text
    no_code = desk.post(desk.editor, "/desk/account/totp/off", {"password": PASSWORD, "code": ""},
                        form_page="/desk/account")
    assert no_code.status_code == 422
    off = desk.post(desk.editor, "/desk/account/totp/off", {"password": PASSWORD, "code": code(secret, 1)},
                    form_page="/desk/account")
    assert off.status_code == 303
    assert password_step(desk, fresh_client(desk)).headers["Location"] == "/desk/"   # no code step any more
    assert "totp_off" in actions(desk)


def test_an_admin_can_require_totp_and_an_account_without_it_can_only_set_it_up(desk: Desk):
    assert desk.post(desk.admin, "/desk/accounts/totp", {"require": "on"}, form_page="/desk/accounts").status_code == 303
    assert totp.required(desk.web.db)
    for path in ("/desk/", "/desk/accounts", "/desk/audit"):
        answer = desk.editor.get(path)
        assert answer.status_code == 303 and answer.headers["Location"] == "/desk/account", path
    page = desk.editor.get("/desk/account")
    assert page.status_code == 200 and "requires two-step login" in page.text
    secret = turn_on(desk, desk.editor)
    assert desk.editor.get("/desk/").status_code == 200
    refused = desk.post(desk.editor, "/desk/account/totp/off", {"password": PASSWORD, "code": code(secret, 1)},
                        form_page="/desk/account")
    assert refused.status_code == 403
    # a login right after: password, then the code step, then the desk
    client = fresh_client(desk)
    assert password_step(desk, client).headers["Location"] == "/desk/login/code"
    assert code_step(client, code(secret, 1)).status_code == 303
    assert "totp_required" in actions(desk)


def test_a_reset_link_turns_totp_off(desk: Desk):
    turn_on(desk, desk.editor)
    secret = accounts.reset_user(desk.web.db, EDITOR)
    client = fresh_client(desk)
    token = TOKEN_RE.search(client.get(f"/desk/password/{secret}").text).group(1)
    assert client.post(f"/desk/password/{secret}", data={"csrf_token": token, "password": "a new passphrase!",
                                                          "password_again": "a new passphrase!"}).status_code == 303
    assert [a.totp for a in accounts.list_users(desk.web.db) if a.email == EDITOR] == [False]
    assert password_step(desk, fresh_client(desk), password="a new passphrase!").headers["Location"] == "/desk/"
    assert text_of(desk.admin.get("/desk/accounts").text).count(" off ") >= 2
