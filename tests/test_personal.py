"""A reader without a name is greeted naturally; any personal value can have a default."""

from __future__ import annotations

import dataclasses
from email import message_from_bytes, policy
from pathlib import Path

import pytest

from mailer.config import Settings
from mailer.content.compose import compose_issue
from mailer.content.personalize import check, default_of, placeholder
from mailer.errors import ComposeError, ConfigError
from mailer.mail.message import MessageFactory, Recipient
from mailer.config import load_settings
from tests.helpers import make_issue


def message_parts(settings: Settings, issue_dir: Path, name: str) -> tuple[str, str]:
    composed = compose_issue(settings, issue_dir)
    factory = MessageFactory(settings, subject=composed.subject, html=composed.html, text=composed.text,
                             issue_slug=composed.slug, preheader=composed.preheader)
    recipient = Recipient(key=1, email="reader@example.net", name=name, subscriber_uid="Qx7vR2pLk9",
                          list_slug="news", list_name="News")
    msg = message_from_bytes(factory.render(recipient).data, policy=policy.default)
    text = msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    html = msg.get_body(("html",)).get_content()  # type: ignore[union-attr]
    return text, html


def test_nameless_reader_gets_the_nameless_greeting_in_both_parts(project: Path):
    settings = Settings(root=project, secret_keys=("k",))
    text, html = message_parts(settings, project / "issues" / "example", "")
    assert "Dear friend," in text and "Dear friend," in html
    assert "Dear ," not in text and "Dear ," not in html
    text, html = message_parts(settings, project / "issues" / "example", "Sam  Okafor")
    assert "Dear Sam Okafor," in text and "Dear Sam Okafor," in html


def test_the_group_chooses_its_greetings_in_settings(project: Path):
    (project / "mailer.toml").write_text('greeting = "Hello {name}!"\ngreeting_nameless = "Hello!"\n')
    settings = dataclasses.replace(load_settings(project), secret_keys=("k",))
    assert message_parts(settings, project / "issues" / "example", "")[0].count("Hello!") == 1
    assert "Hello Jo!" in message_parts(settings, project / "issues" / "example", "Jo")[1]


@pytest.mark.parametrize("toml, field", [('greeting = "Dear,"', "greeting"),
                                         ('greeting = "Dear {name} {x}"', "greeting"),
                                         ('greeting_nameless = ""', "greeting_nameless")])
def test_a_greeting_setting_without_its_name_is_refused(project: Path, toml: str, field: str):
    (project / "mailer.toml").write_text(toml + "\n")
    with pytest.raises(ConfigError, match=f"setting '{field}'"):
        load_settings(project)


def test_any_personal_value_can_have_a_default_written_in_the_template(project: Path):
    templates = project / "own"
    templates.mkdir()
    (templates / "issue.txt").write_text(
        "Hi {{ personal('name', default='comrade & friend') }}!\n{{ personal('email') }}\n"
        "{{ personal('unsubscribe_url') }}\n")
    (templates / "issue.html").write_text(
        "<html><body><p>Hi {{ personal('name', default='comrade & friend') }}!</p>"
        "<a href=\"{{ personal('unsubscribe_url') }}\">Unsubscribe</a></body></html>")
    settings = Settings(root=project, secret_keys=("k",), templates_path=("own", "templates"))
    issue = make_issue(project, "plain", reports={"a.md": "# A\n\nSome words here.\n"})
    text, html = message_parts(settings, issue, "")
    assert "Hi comrade & friend!" in text
    assert "Hi comrade &amp; friend!" in html
    text, html = message_parts(settings, issue, "Ana")
    assert "Hi Ana!" in text and "Hi Ana!" in html


def test_a_default_survives_as_letters_and_decodes_back():
    marker = placeholder("name", default="Genossin — ĉiu")
    assert marker.startswith("__mailer_name_or_") and marker.replace("_", "").isalpha()
    assert check(f"x {marker} y") == ("name",)
    assert default_of(marker[len("__mailer_name_or_"):-2]) == "Genossin — ĉiu"


def test_a_default_over_a_line_is_one_compose_error(project: Path):
    templates = project / "own"
    templates.mkdir()
    (templates / "issue.txt").write_text("Hi {{ personal('name', default='" + "x" * 300 + "') }}\n")
    settings = Settings(root=project, secret_keys=("k",), templates_path=("own", "templates"))
    with pytest.raises(ComposeError, match=r"own/issue.txt:1: personal\('name', default=...\): the default must be one line"):
        compose_issue(settings, project / "issues" / "example")


def test_a_subscriber_attribute_fills_personal_attr_with_its_default(project: Path):
    templates = project / "own"
    templates.mkdir()
    body = "Your branch: {{ personal('attr.branch', default='the whole city') }}; dues {{ personal('attr.dues') }}."
    (templates / "issue.txt").write_text(body + "\n{{ personal('unsubscribe_url') }}\n")
    (templates / "issue.html").write_text(f"<html><body><p>{body}</p><a href=\"{{{{ personal('unsubscribe_url') }}}}\">"
                                          "Unsubscribe</a></body></html>")
    settings = Settings(root=project, secret_keys=("k",), templates_path=("own", "templates"))
    issue = make_issue(project, "attrs", reports={"a.md": "# A\n\nWords.\n"})
    composed = compose_issue(settings, issue)
    factory = MessageFactory(settings, subject=composed.subject, html=composed.html, text=composed.text,
                             issue_slug=composed.slug)

    def parts(attributes: dict) -> tuple[str, str]:
        recipient = Recipient(key=1, email="r@example.net", name="", subscriber_uid="Qx7vR2pLk9",
                              list_slug="news", list_name="News", attributes=attributes)
        msg = message_from_bytes(factory.render(recipient).data, policy=policy.default)
        return (msg.get_body(("plain",)).get_content(),  # type: ignore[union-attr]
                msg.get_body(("html",)).get_content())  # type: ignore[union-attr]

    text, html = parts({"branch": "Eastfield <North>", "dues": 2})
    assert "Your branch: Eastfield <North>; dues 2." in text
    assert "Your branch: Eastfield &lt;North&gt;; dues 2." in html
    text, html = parts({})
    assert "Your branch: the whole city; dues ." in text


def test_an_attribute_name_that_is_not_a_name_is_one_compose_error(project: Path):
    templates = project / "own"
    templates.mkdir()
    (templates / "issue.txt").write_text("{{ personal('attr.no such') }}\n")
    settings = Settings(root=project, secret_keys=("k",), templates_path=("own", "templates"))
    with pytest.raises(ComposeError, match=r"own/issue.txt:1: unknown personalisation field 'attr.no such'"):
        compose_issue(settings, project / "issues" / "example")
