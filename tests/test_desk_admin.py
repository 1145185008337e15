"""The admin's pages: accounts (add with a link shown once, role, disable/enable, reset, remove), the
last-admin rule (on the desk and in the CLI), the audit log (newest first, pages, filters); an
editor gets 403 on all of them. Run on SQLite and PostgreSQL through the Flask test client."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from mailer.desk import accounts, audit
from mailer.errors import InputError
from mailer.models import DeskSession
from tests.desk_fixtures import ADMIN, EDITOR, PASSWORD, Desk, desk, text_of, web_app  # noqa: F401
from tests.web_fixtures import TOKEN_RE

LINK = re.compile(r"https://news\.example\.org/desk/password/([A-Za-z0-9_-]+)")
ADMIN_GETS = ("/desk/accounts", "/desk/audit", f"/desk/accounts/remove?email={EDITOR}")
ADMIN_POSTS = ("/desk/accounts/add", "/desk/accounts/role", "/desk/accounts/disable", "/desk/accounts/enable",
               "/desk/accounts/reset", "/desk/accounts/remove", "/desk/accounts/totp")


def admin_post(desk: Desk, path: str, data: dict):  # type: ignore[no-untyped-def]
    return desk.post(desk.admin, path, data, form_page="/desk/accounts")


def test_an_editor_gets_403_on_every_admin_page_and_action(desk: Desk):
    for path in ADMIN_GETS:
        assert desk.editor.get(path).status_code == 403, path
    for path in ADMIN_POSTS:
        answer = desk.post(desk.editor, path, {"email": EDITOR, "role": "admin", "require": "on"})
        assert answer.status_code == 403, path
    assert [a.role for a in accounts.list_users(desk.web.db) if a.email == EDITOR] == ["editor"]
    assert "Accounts" not in desk.editor.get("/desk/").text          # not in an editor's nav either
    assert 'href="/desk/accounts"' in desk.admin.get("/desk/").text


def test_add_shows_the_link_once_and_it_sets_a_password(desk: Desk):
    added = admin_post(desk, "/desk/accounts/add", {"email": "kim@example.org", "role": "editor"})
    assert added.status_code == 201
    secret = LINK.search(added.text).group(1)
    assert secret not in desk.admin.get("/desk/accounts").text       # shown only once
    client = desk.web.app.test_client()
    token = TOKEN_RE.search(client.get(f"/desk/password/{secret}").text).group(1)
    assert client.post(f"/desk/password/{secret}", data={"csrf_token": token, "password": PASSWORD,
                                                          "password_again": PASSWORD}).status_code == 303
    listing = text_of(desk.admin.get("/desk/accounts").text)
    assert "kim@example.org" in listing
    twice = admin_post(desk, "/desk/accounts/add", {"email": "KIM@example.org", "role": "editor"})
    assert twice.status_code == 409 and "exists already" in twice.text
    bad = admin_post(desk, "/desk/accounts/add", {"email": "not an address", "role": "editor"})
    assert bad.status_code == 422 and 'value="not an address"' in bad.text
    role = admin_post(desk, "/desk/accounts/add", {"email": "lee@example.org", "role": "chief"})
    assert role.status_code == 422 and "not a role" in role.text
    rows = [(r.actor, r.action, r.target) for r in audit.entries(desk.web.db, action="user_add")[0]]
    assert (ADMIN, "user_add", "kim@example.org") in rows


def test_role_disable_enable_reset_and_remove(desk: Desk):
    made = admin_post(desk, "/desk/accounts/role", {"email": EDITOR, "role": "admin"})
    assert made.status_code == 303
    assert "jo@example.org is now admin." in desk.admin.get(made.headers["Location"]).text
    assert desk.editor.get("/desk/accounts").status_code == 200      # the role counts at the next request
    assert admin_post(desk, "/desk/accounts/role", {"email": EDITOR, "role": "editor"}).status_code == 303
    off = admin_post(desk, "/desk/accounts/disable", {"email": EDITOR})
    assert off.status_code == 303
    assert desk.editor.get("/desk/").headers["Location"] == "/desk/login"   # its session ended
    assert "disabled" in text_of(desk.admin.get("/desk/accounts").text)
    assert admin_post(desk, "/desk/accounts/enable", {"email": EDITOR}).status_code == 303
    reset = admin_post(desk, "/desk/accounts/reset", {"email": EDITOR})
    assert reset.status_code == 200 and LINK.search(reset.text)
    confirm = desk.admin.get(f"/desk/accounts/remove?email={EDITOR}")
    assert confirm.status_code == 200 and "cannot be undone" in confirm.text
    assert [a.email for a in accounts.list_users(desk.web.db)].count(EDITOR) == 1     # a GET removes nothing
    gone = admin_post(desk, "/desk/accounts/remove", {"email": EDITOR})
    assert gone.status_code == 303
    assert EDITOR not in [a.email for a in accounts.list_users(desk.web.db)]
    unknown = admin_post(desk, "/desk/accounts/disable", {"email": "nobody@example.org"})
    assert unknown.status_code == 404 and "No desk account" in unknown.text
    assert desk.admin.get("/desk/accounts/remove?email=nobody@example.org").status_code == 404
    names = [e.action for e in audit.entries(desk.web.db, actor=ADMIN)[0]]
    for action in ("user_role", "user_disable", "user_enable", "user_reset", "user_remove"):
        assert action in names


@pytest.mark.parametrize("path, data", [("/desk/accounts/disable", {}), ("/desk/accounts/remove", {}),
                                        ("/desk/accounts/role", {"role": "editor"})])
def test_the_last_active_admin_stays_on_the_desk(desk: Desk, path: str, data: dict):
    refused = admin_post(desk, path, {"email": ADMIN, **data})
    assert refused.status_code == 409 and "last active admin" in refused.text
    assert [(a.role, a.disabled) for a in accounts.list_users(desk.web.db) if a.email == ADMIN] == [("admin", False)]
    with desk.web.db.session() as session:
        assert session.scalar(select(DeskSession.id).limit(1)) is not None
    accounts.set_role(desk.web.db, EDITOR, "admin")                 # with a second admin, it may go
    assert admin_post(desk, path, {"email": ADMIN, **data}).status_code == 303


def test_the_cli_obeys_the_last_admin_rule(desk: Desk):
    from click.testing import CliRunner

    from mailer.cli import cli
    from tests.helpers import TEST_ENV
    env = {**TEST_ENV, "MAILER_ROOT": str(desk.web.settings.root), "MAILER_DATABASE_URL": desk.web.db.url}
    for command in ("disable", "remove"):
        result = CliRunner().invoke(cli, ["users", command, ADMIN], env=env)
        assert result.exit_code != 0 and "last active admin" in result.output, result.output
        assert "Traceback" not in result.output
    with pytest.raises(InputError):
        accounts.set_role(desk.web.db, ADMIN, "editor")
    demote = CliRunner().invoke(cli, ["users", "role", ADMIN, "editor"], env=env)
    assert demote.exit_code != 0 and "last active admin" in demote.output
    bad = CliRunner().invoke(cli, ["users", "role", EDITOR, "chief"], env=env)
    assert bad.exit_code != 0 and "not a role" in bad.output
    assert CliRunner().invoke(cli, ["users", "role", EDITOR, "admin"], env=env).exit_code == 0
    assert CliRunner().invoke(cli, ["users", "disable", ADMIN], env=env).exit_code == 0   # another admin now
    enabled = CliRunner().invoke(cli, ["users", "enable", ADMIN], env=env)
    assert enabled.exit_code == 0 and "enabled" in enabled.output
    listed = CliRunner().invoke(cli, ["users", "list"], env=env)
    assert listed.exit_code == 0 and "totp" in listed.output
    assert [(a.role, a.disabled) for a in accounts.list_users(desk.web.db)] == [("admin", False), ("admin", False)]


def test_the_audit_log_is_newest_first_paginated_and_filtered(desk: Desk):
    for n in range(60):
        audit.log(desk.web.db, "test_action", actor="cli", target=f"n{n:02d}@example.org")
    page = desk.admin.get("/desk/audit")
    assert page.status_code == 200
    text = text_of(page.text)
    assert text.index("n59@example.org") < text.index("n58@example.org")
    assert "n00@example.org" not in text and 'rel="next"' in page.text
    older = desk.admin.get(re.search(r'href="([^"]+)" rel="next"', page.text).group(1).replace("&amp;", "&"))
    assert "n00@example.org" in older.text and 'rel="prev"' in older.text
    only = desk.admin.get("/desk/audit?actor=CLI&action=test_action")
    assert "60 entries" in text_of(only.text) and "login" not in re.findall(r"<td data-label=\"What\">(\w+)", only.text)
    logins = desk.admin.get(f"/desk/audit?actor={ADMIN}")
    assert set(re.findall(r'<td data-label="Who">([^<]+)', logins.text)) == {ADMIN}
    assert desk.admin.get("/desk/audit?page=oops").status_code == 200
    assert desk.admin.get("/desk/audit?page=999").status_code == 200
