"""The editor's desk, its foundation: `mailer users`, set-password links, login, sessions, the issue list.

Run on SQLite and PostgreSQL (the `db` fixture), through the real CLI and the Flask test client.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from click.testing import CliRunner
from sqlalchemy import select, update

from mailer.cli import cli
from mailer.desk import sessions
from mailer.models import DeskAudit, DeskSession, DeskToken, DeskUser, utcnow
from tests.helpers import TEST_ENV, make_issue
from tests.web_fixtures import TOKEN_RE, WebApp, web_app  # noqa: F401

PASSWORD = "correct horse battery"
LINK_RE = re.compile(r"https://news\.example\.org/desk/password/([A-Za-z0-9_-]+)")
COOKIE = "__Secure-mailer-desk"


@pytest.fixture
def run(db, settings):
    """Invoke `mailer ...` against the `db` fixture; returns the click Result."""
    env = {**TEST_ENV, "MAILER_ROOT": str(settings.root), "MAILER_DATABASE_URL": db.url}

    def invoke(*args: str):  # type: ignore[no-untyped-def]
        return CliRunner().invoke(cli, list(args), env=env)

    return invoke


def add_user(run, email: str = "jo@example.org", role: str = "editor") -> str:  # type: ignore[no-untyped-def]
    """`mailer users add`; the secret of the link it prints."""
    result = run("users", "add", email, "--role", role)
    assert result.exit_code == 0, result.output
    return LINK_RE.search(result.output).group(1)


def page_token(web: WebApp, path: str) -> str:
    page = web.client.get(path)
    assert page.status_code == 200, page.text
    return TOKEN_RE.search(page.text).group(1)


def set_password(web: WebApp, secret: str, password: str = PASSWORD):  # type: ignore[no-untyped-def]
    token = page_token(web, f"/desk/password/{secret}")
    return web.client.post(f"/desk/password/{secret}",
                           data={"csrf_token": token, "password": password, "password_again": password})


def log_in(web: WebApp, email: str = "jo@example.org", password: str = PASSWORD):  # type: ignore[no-untyped-def]
    token = page_token(web, "/desk/login")
    return web.client.post("/desk/login", data={"csrf_token": token, "email": email, "password": password})


def audit_actions(web: WebApp) -> list[str]:
    with web.db.session() as session:
        return list(session.scalars(select(DeskAudit.action).order_by(DeskAudit.id)))


def logged_in(web: WebApp) -> bool:
    page = web.client.get("/desk/")
    return page.status_code == 200 and "Log out" in page.text


def test_users_add_prints_a_link_that_sets_a_password_once(web_app: WebApp, run):
    secret = add_user(run)
    page = web_app.client.get(f"/desk/password/{secret}")
    assert page.status_code == 200 and "jo@example.org" in page.text
    assert not logged_in(web_app)                 # GET changed nothing
    token = TOKEN_RE.search(page.text).group(1)
    done = web_app.client.post(f"/desk/password/{secret}",
                               data={"csrf_token": token, "password": PASSWORD, "password_again": PASSWORD})
    assert done.status_code == 303 and done.headers["Location"] == "/desk/"
    assert logged_in(web_app)
    again = web_app.client.get(f"/desk/password/{secret}")
    assert again.status_code == 410 and "used already" in again.text
    replay = web_app.client.post(f"/desk/password/{secret}",
                                 data={"csrf_token": token, "password": "another password 123",
                                       "password_again": "another password 123"})
    assert replay.status_code == 410
    with web_app.db.session() as session:
        stored = session.scalar(select(DeskUser.password_hash))
        assert stored.startswith("$argon2id$") and PASSWORD not in stored
        assert session.scalar(select(DeskToken.token_hash)) != secret    # only the hash is stored


def test_the_printed_link_is_never_a_password_and_the_token_is_stored_hashed(web_app: WebApp, run):
    secret = add_user(run)
    with web_app.db.session() as session:
        assert secret not in {session.scalar(select(DeskToken.token_hash))}
        assert session.scalar(select(DeskUser.password_hash)) == ""


def test_an_expired_link_is_refused_and_changes_nothing(web_app: WebApp, run):
    secret = add_user(run)
    token = page_token(web_app, f"/desk/password/{secret}")
    with web_app.db.session() as session:
        session.execute(update(DeskToken).values(expires_at=utcnow() - timedelta(minutes=1)))
    assert web_app.client.get(f"/desk/password/{secret}").status_code == 410
    refused = web_app.client.post(f"/desk/password/{secret}",
                                  data={"csrf_token": token, "password": PASSWORD, "password_again": PASSWORD})
    assert refused.status_code == 410 and "expired" in refused.text
    with web_app.db.session() as session:
        assert session.scalar(select(DeskUser.password_hash)) == ""


def test_a_weak_password_is_refused_and_the_link_still_works(web_app: WebApp, run):
    secret = add_user(run)
    short = set_password(web_app, secret, "short")
    assert short.status_code == 400 and "at least 12 characters" in short.text
    same = set_password(web_app, secret, "jo@example.org")
    assert same.status_code == 400
    assert set_password(web_app, secret).status_code == 303


def test_a_link_post_without_its_form_token_is_refused(web_app: WebApp, run):
    secret = add_user(run)
    refused = web_app.client.post(f"/desk/password/{secret}",
                                  data={"password": PASSWORD, "password_again": PASSWORD})
    assert refused.status_code == 400
    with web_app.db.session() as session:
        assert session.scalar(select(DeskUser.password_hash)) == ""


def test_login_sets_a_strict_cookie_and_a_wrong_password_gets_the_generic_answer(web_app: WebApp, run):
    set_password(web_app, add_user(run))
    web_app.client.post("/desk/logout", data={"csrf_token": "x"})   # (refused: the link's session stays)
    web_app.client.delete_cookie(COOKIE, path="/desk")
    wrong = log_in(web_app, password="wrong password!!")
    unknown = log_in(web_app, email="nobody@example.org")
    assert wrong.status_code == unknown.status_code == 401
    assert sessions.LOGIN_FAILED_TEXT in wrong.text and sessions.LOGIN_FAILED_TEXT in unknown.text
    assert audit_actions(web_app)[-2:] == ["login_failed", "login_failed"]
    ok = log_in(web_app)
    assert ok.status_code == 303
    cookie = ok.headers["Set-Cookie"]
    assert cookie.startswith(f"{COOKIE}=")
    for flag in ("Secure", "HttpOnly", "SameSite=Strict", "Path=/desk"):
        assert flag in cookie, cookie
    assert logged_in(web_app)
    assert audit_actions(web_app)[-1] == "login"
    listed = run("users", "list")
    assert "jo@example.org" in listed.output and "never" not in listed.output


def test_login_rotates_the_session_id(web_app: WebApp, run):
    set_password(web_app, add_user(run))
    before = web_app.client.get_cookie(COOKIE, path="/desk").value
    assert web_app.client.get("/desk/login").status_code == 303          # logged in already
    token = web_app.app.extensions["mailer"].forms.mint()
    again = web_app.client.post("/desk/login", data={"csrf_token": token, "email": "jo@example.org",
                                                     "password": PASSWORD})
    assert again.status_code == 303
    after = web_app.client.get_cookie(COOKIE, path="/desk").value
    assert after != before
    assert sessions.current(web_app.db, before) is None      # the old session ended with the new login


def test_five_failed_logins_lock_the_account_for_the_window(web_app: WebApp, run):
    set_password(web_app, add_user(run))
    web_app.client.delete_cookie(COOKIE, path="/desk")
    for _ in range(5):
        assert log_in(web_app, password="not the password").status_code == 401
    locked = log_in(web_app)                                 # even the right password
    assert locked.status_code == 429 and "15 minutes" in locked.text
    assert not logged_in(web_app)
    assert audit_actions(web_app)[-1] == "login_locked"
    with web_app.db.session() as session:                  # the window passes
        session.execute(update(DeskAudit).values(at=utcnow() - timedelta(minutes=16)))
    assert log_in(web_app).status_code == 303


def test_every_desk_page_but_login_and_links_needs_a_session(web_app: WebApp):
    from mailer.desk.pages import PUBLIC_ENDPOINTS
    walked = 0
    for rule in web_app.app.url_map.iter_rules():
        if not rule.rule.startswith("/desk") or rule.endpoint in PUBLIC_ENDPOINTS:
            continue
        path = re.sub(r"<int:\w+>", "1", rule.rule)       # a converter's own kind of value, so the rule matches
        path = re.sub(r"<(?:\w+:)?\w+>", "x", path)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            answer = web_app.client.open(path, method=method)
            walked += 1
            if path.endswith(".json"):                         # what scripts poll: 401, not a login page
                assert answer.status_code == 401, (method, path)
            else:
                assert answer.status_code == 303 and answer.headers["Location"] == "/desk/login", (method, path)
    assert walked >= 2                                       # the issue list and logout, at least


def test_desk_scripts_are_public_static_files(web_app: WebApp):
    from mailer.desk.pages import PUBLIC_ENDPOINTS
    assert PUBLIC_ENDPOINTS == {"desk.script", "desk.login_form", "desk.login_submit",
                                "desk.password_form", "desk.password_submit", "desk.code_form", "desk.code_submit"}
    assert web_app.client.get("/desk/js/../base.js").status_code == 404
    assert web_app.client.get("/desk/js/nosuch.js").status_code == 404


def test_disable_ends_the_session_at_once(web_app: WebApp, run):
    set_password(web_app, add_user(run))
    assert logged_in(web_app)
    done = run("users", "disable", "jo@example.org")
    assert done.exit_code == 0 and "1 session(s) ended" in done.output
    answer = web_app.client.get("/desk/")
    assert answer.status_code == 303 and answer.headers["Location"] == "/desk/login"
    assert log_in(web_app).status_code == 401
    with web_app.db.session() as session:
        assert session.scalar(select(DeskSession.id)) is None


def test_logout_needs_post_and_the_session_csrf_token(web_app: WebApp, run):
    set_password(web_app, add_user(run))
    assert web_app.client.get("/desk/logout").status_code == 405
    assert web_app.client.post("/desk/logout").status_code == 400
    public_token = web_app.app.extensions["mailer"].forms.mint()      # a public form's token is not the session's
    assert web_app.client.post("/desk/logout", data={"csrf_token": public_token}).status_code == 400
    assert logged_in(web_app)
    token = re.search(r'name="csrf_token" value="([0-9a-f]{64})"', web_app.client.get("/desk/").text).group(1)
    foreign = web_app.client.post("/desk/logout", data={"csrf_token": token},
                                  headers={"Origin": "https://evil.example"})
    assert foreign.status_code == 400 and logged_in(web_app)
    out = web_app.client.post("/desk/logout", data={"csrf_token": token})
    assert out.status_code == 303 and out.headers["Location"] == "/desk/login"
    assert not logged_in(web_app)
    assert audit_actions(web_app)[-1] == "logout"


def test_the_issue_list_shows_each_folder_subject_and_status_escaped(web_app: WebApp, run):
    make_issue(web_app.settings.root, "2026-12-news", {"a.md": "# A\n\nText."},
               subject="<script>alert(1)</script> December")
    set_password(web_app, add_user(run))
    page = web_app.client.get("/desk/")
    assert page.status_code == 200
    assert "&lt;script&gt;alert(1)&lt;/script&gt; December" in page.text and "<script>" not in page.text
    assert re.search(r"2026-12-news.*?status-draft", page.text, re.S)
    assert re.search(r"example.*?status-draft", page.text, re.S)


def test_the_issue_list_follows_issue_toml_edited_by_hand(web_app: WebApp, run):
    folder = make_issue(web_app.settings.root, "2026-12-news", {}, subject="First subject")
    set_password(web_app, add_user(run))
    assert "First subject" in web_app.client.get("/desk/").text
    toml = folder / "issue.toml"
    toml.write_text(toml.read_text(encoding="utf-8").replace("First subject", "Other subject"), encoding="utf-8")
    assert "Other subject" in web_app.client.get("/desk/").text            # same size, rewritten in place
    toml.write_text("subject = [\n", encoding="utf-8")
    assert "invalid TOML" in web_app.client.get("/desk/").text
    toml.write_text('subject = "Mended"\ndate = "2026-12-01"\nlists = ["news"]\n', encoding="utf-8")
    assert "Mended" in web_app.client.get("/desk/").text


def test_users_list_reset_remove_and_bad_input(web_app: WebApp, run):
    add_user(run, "admin@example.org", "admin")
    listed = run("users", "list")
    assert listed.exit_code == 0 and "admin@example.org" in listed.output and "no password yet" in listed.output
    bad_role = run("users", "add", "x@example.org", "--role", "chief")
    assert bad_role.exit_code != 0 and bad_role.output.strip().count("\n") == 0 and "role" in bad_role.output
    assert "Traceback" not in bad_role.output
    twice = run("users", "add", "ADMIN@example.org")
    assert twice.exit_code != 0 and "exists already" in twice.output
    for command in ("disable", "reset", "remove"):
        unknown = run("users", command, "nobody@example.org")
        assert unknown.exit_code != 0 and unknown.output.strip().count("\n") == 0, unknown.output
        assert "no desk account" in unknown.output
    first = add_user(run)
    reset = run("users", "reset", "jo@example.org")
    second = LINK_RE.search(reset.output).group(1)
    assert web_app.client.get(f"/desk/password/{first}").status_code == 410     # voided by the reset
    assert set_password(web_app, second).status_code == 303
    assert run("users", "remove", "jo@example.org").exit_code == 0
    assert not logged_in(web_app)
    assert "jo@example.org" not in run("users", "list").output
    actions = audit_actions(web_app)
    for action in ("user_add", "user_reset", "password_set", "login", "user_remove"):
        assert action in actions


def test_a_login_from_another_origin_is_refused(web_app: WebApp, run):
    set_password(web_app, add_user(run))
    web_app.client.delete_cookie(COOKIE, path="/desk")
    token = page_token(web_app, "/desk/login")
    refused = web_app.client.post("/desk/login", headers={"Origin": "https://evil.example"},
                                  data={"csrf_token": token, "email": "jo@example.org", "password": PASSWORD})
    assert refused.status_code == 400 and "Set-Cookie" not in refused.headers
    assert not logged_in(web_app)


def test_a_new_password_ends_the_other_sessions(web_app: WebApp, run):
    set_password(web_app, add_user(run))
    assert logged_in(web_app)
    other = WebApp(web_app.app, web_app.app.test_client(), web_app.settings, web_app.db)
    secret = LINK_RE.search(run("users", "reset", "jo@example.org").output).group(1)
    assert set_password(other, secret, "a brand new passphrase").status_code == 303
    assert logged_in(other) and not logged_in(web_app)
    web_app.client.delete_cookie(COOKIE, path="/desk")
    assert log_in(web_app).status_code == 401                               # the old password is gone
    assert log_in(web_app, password="a brand new passphrase").status_code == 303


def test_public_pages_still_set_no_cookie(web_app: WebApp):
    for path in ("/", "/subscribe/news", "/archive/"):
        answer = web_app.client.get(path)
        assert answer.status_code == 200 and "Set-Cookie" not in answer.headers, path


@pytest.mark.parametrize("column, age", [("last_seen", timedelta(hours=8, minutes=1)),
                                         ("expires_at", timedelta(seconds=1))])
def test_a_session_ends_after_8_idle_hours_or_7_days(web_app: WebApp, run, column: str, age: timedelta):
    set_password(web_app, add_user(run))
    assert logged_in(web_app)
    with web_app.db.session() as session:
        session.execute(update(DeskSession).values({column: utcnow() - age}))
    answer = web_app.client.get("/desk/")
    assert answer.status_code == 303 and answer.headers["Location"] == "/desk/login"
    with web_app.db.session() as session:
        assert session.scalar(select(DeskSession.id)) is None           # the row is gone too


def test_the_issue_list_reads_send_status_from_the_ledger(web_app: WebApp, run):
    from mailer.models import SendStatus
    from tests.test_web_site import add_send

    make_issue(web_app.settings.root, "2026-11-news", {}, subject="November")
    make_issue(web_app.settings.root, "2026-12-news", {}, subject="December")
    make_issue(web_app.settings.root, "broken", {}, toml='subject = ""\n')
    add_send(web_app.db, "example", 3, "Example", SendStatus.DONE)
    add_send(web_app.db, "2026-12-news", 0, "December", SendStatus.SCHEDULED)
    set_password(web_app, add_user(run))
    text = web_app.client.get("/desk/").text
    rows = re.findall(r"<tr>\s*<td>(?:<a href=\"[^\"]*\">)?([\w-]+).*?status-(\w+)", text, re.S)
    assert rows == [("2026-12-news", "scheduled"), ("example", "sent"), ("broken", "draft"),
                    ("2026-11-news", "draft")]     # by status, then newest name first
    assert "&#39;subject&#39; is missing or empty" in text
