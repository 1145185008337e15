"""Fixtures of the desk tests: the web app with a logged-in editor (and an admin), and a POST helper.

`desk` gives a `Desk`: `desk.editor` and `desk.admin` are Flask test clients, each logged in through
its own set-password link (so each has its own session and CSRF token); `desk.post(client, path,
data)` sends a form with the session's CSRF token read from `path`'s page (or the desk's index).
Use: `from tests.desk_fixtures import desk, web_app  # noqa: F401` (pytest needs both names).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterator

import pytest
from flask.testing import FlaskClient

from mailer.desk import accounts
from tests.web_fixtures import TOKEN_RE, WebApp, web_app  # noqa: F401

PASSWORD = "correct horse battery"
EDITOR = "jo@example.org"
ADMIN = "sam@example.org"


@dataclass
class Desk:
    web: WebApp
    editor: FlaskClient
    admin: FlaskClient

    def token(self, client: FlaskClient, path: str = "/desk/") -> str:
        """The CSRF token of *client*'s session, as a form on *path* carries it."""
        page = client.get(path)
        assert page.status_code == 200, page.text
        match = TOKEN_RE.search(page.text)
        assert match, f"no csrf_token on {path}"
        return match.group(1)

    def post(self, client: FlaskClient, path: str, data: dict[str, Any] | None = None, *,
             form_page: str = "/desk/", **kwargs: Any):  # type: ignore[no-untyped-def]
        """POST *data* to *path* with *client*'s CSRF token (taken from *form_page*)."""
        fields = {"csrf_token": self.token(client, form_page), **(data or {})}
        return client.post(path, data=fields, **kwargs)


def logged_in_client(web: WebApp, email: str, role: str) -> FlaskClient:
    """A new test client whose session belongs to a new account *email* with *role*."""
    secret = accounts.add_user(web.db, email, role)
    client = web.app.test_client()
    page = client.get(f"/desk/password/{secret}")
    token = TOKEN_RE.search(page.text).group(1)  # type: ignore[union-attr]
    done = client.post(f"/desk/password/{secret}",
                       data={"csrf_token": token, "password": PASSWORD, "password_again": PASSWORD})
    assert done.status_code == 303, done.text
    return client


@pytest.fixture
def desk(web_app: WebApp) -> Iterator[Desk]:  # noqa: F811
    """The app of `web_app` (both databases) with a logged-in editor and admin."""
    yield Desk(web_app, logged_in_client(web_app, EDITOR, "editor"), logged_in_client(web_app, ADMIN, "admin"))


HTML_TAG = re.compile(r"<[^>]+>")


def text_of(html: str) -> str:
    """A page's text without tags (for asserting what a reader sees)."""
    return re.sub(r"\s+", " ", HTML_TAG.sub(" ", html)).strip()
