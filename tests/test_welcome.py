"""Welcome mail: a list's welcome issue, sent once when a subscription is confirmed (SQLite and PostgreSQL)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from mailer.cli import cli
from mailer.errors import ComposeError
from mailer.models import MailKind, QueuedMail, SubscriptionStatus
from mailer.people import directory
from tests.helpers import TEST_ENV, make_issue
from tests.web_fixtures import WebApp, body_text, web_app  # noqa: F401

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
WELCOME = "Welcome to Riverside News"


def welcome_folder(project: Path) -> Path:
    return make_issue(project, "welcome", {"01-hello.md": "# Glad you are here\n\nWe meet every Tuesday.\n"},
                      toml=f'subject = "{WELCOME}"\nintro = "Thank you for joining us."\n')


def confirm_by_link(web_app: WebApp, mail) -> str:  # type: ignore[no-untyped-def]
    link = re.search(r"https://\S+/confirm/\S+", body_text(mail)).group(0)
    path = link.split("news.example.org", 1)[1]
    token = re.search(r'name="csrf_token" value="([^"]+)"', web_app.client.get(path).text).group(1)
    assert web_app.client.post(path, data={"csrf_token": token}).status_code == 200
    return path


def welcomes(web_app: WebApp) -> list:  # type: ignore[no-untyped-def]
    return [m for m in web_app.outbox() if m["Subject"] == WELCOME]


def test_confirming_by_link_sends_the_welcome_once_as_a_list_message(web_app: WebApp, project: Path) -> None:
    subject = directory.set_welcome(web_app.db, web_app.settings, "news", str(welcome_folder(project)))
    assert subject == WELCOME
    web_app.sign_up("ana@example.org", "Ana Silva")
    web_app.deliver()
    [confirmation] = web_app.outbox()
    assert welcomes(web_app) == []                   # nobody is welcomed before confirming
    path = confirm_by_link(web_app, confirmation)
    assert web_app.deliver().sent == 1
    [welcome] = welcomes(web_app)
    assert welcome["To"] == "Ana Silva <ana@example.org>"
    assert "Dear Ana Silva," in body_text(welcome) and "We meet every Tuesday." in body_text(welcome)
    assert welcome["List-Unsubscribe"] and welcome["List-Id"].endswith("<news.lists.example.org>")
    token = web_app.form_token()                     # the link again: already confirmed
    assert web_app.client.post(path, data={"csrf_token": token}).status_code in (200, 400)
    web_app.deliver()
    assert len(welcomes(web_app)) == 1


def test_leaving_and_coming_back_is_not_welcomed_again(web_app: WebApp, project: Path) -> None:
    directory.set_welcome(web_app.db, web_app.settings, "bulletin", str(welcome_folder(project)))
    web_app.sign_up("bo@example.org", slug="bulletin")       # single opt-in: confirmed at once
    web_app.deliver()
    assert len(welcomes(web_app)) == 1
    assert directory.unsubscribe_person(web_app.db, web_app.settings, "bo@example.org", "bulletin") == 1
    assert web_app.status("bo@example.org", "bulletin") is SubscriptionStatus.UNSUBSCRIBED
    directory.add_subscriber(web_app.db, web_app.settings, "bo@example.org", "", "bulletin", confirmed=False)
    with web_app.db.session() as session:    # they come back and confirm by their own new opt-in
        from mailer.models import Subscription
        from mailer.people.subscriptions import confirm

        confirm(session, web_app.settings, session.scalar(select(Subscription)))
    web_app.deliver()
    assert web_app.status("bo@example.org", "bulletin") is SubscriptionStatus.CONFIRMED
    assert len(welcomes(web_app)) == 1


def test_a_list_without_welcome_and_an_admin_add_send_none_unless_asked(web_app: WebApp, project: Path) -> None:
    web_app.sign_up("cy@example.org", slug="bulletin")
    web_app.deliver()
    assert web_app.outbox() == []
    directory.set_welcome(web_app.db, web_app.settings, "bulletin", str(welcome_folder(project)))
    directory.add_subscriber(web_app.db, web_app.settings, "di@example.org", "Di", "bulletin", confirmed=True)
    web_app.deliver()
    assert welcomes(web_app) == []
    directory.add_subscriber(web_app.db, web_app.settings, "ed@example.org", "", "bulletin", confirmed=True,
                             welcome=True)
    web_app.deliver()
    [welcome] = welcomes(web_app)
    assert welcome["To"] == "ed@example.org" and "Dear friend," in body_text(welcome)
    with web_app.db.session() as session:
        assert [k for k in session.scalars(select(QueuedMail.kind))] == [MailKind.WELCOME]


def test_a_welcome_issue_that_does_not_compose_is_refused_and_nothing_is_set(web_app: WebApp, project: Path):
    broken = make_issue(project, "broken", {})
    with pytest.raises(ComposeError, match="no reports in this issue"):
        directory.set_welcome(web_app.db, web_app.settings, "news", str(broken))
    web_app.sign_up("fe@example.org", slug="bulletin")
    web_app.deliver()
    assert web_app.outbox() == []


def test_cli_sets_and_clears_the_welcome(project: Path) -> None:
    env = {**TEST_ENV, "MAILER_ROOT": str(project)}
    runner = CliRunner()
    assert runner.invoke(cli, ["db", "upgrade"], env=env).exit_code == 0
    assert runner.invoke(cli, ["lists", "add", "news", "News"], env=env).exit_code == 0
    welcome_folder(project)
    r = runner.invoke(cli, ["lists", "welcome", "news", "issues/welcome"], env=env)
    assert r.exit_code == 0 and f"new confirmed subscribers get '{WELCOME}'" in r.output
    r = runner.invoke(cli, ["lists", "welcome", "news"], env=env)
    assert r.exit_code != 0 and "give the welcome issue folder, or --off" in r.stderr
    r = runner.invoke(cli, ["subscribers", "add", "x@example.org", "--list", "news", "--welcome"], env=env)
    assert r.exit_code != 0 and "--welcome needs --confirmed" in r.stderr
    r = runner.invoke(cli, ["lists", "welcome", "news", "--off"], env=env)
    assert r.exit_code == 0 and "list news: no welcome mail" in r.output
