"""The desk's security, checked generically over the app's URL map (pages other parts add are covered
as they land): login needed everywhere, CSRF and origin on every POST, no session fixation, a disabled
account's session ends, account management is the admin's, brute force locks out (and is logged),
and script in any name renders as text on every desk page reachable by GET.

Run on SQLite and PostgreSQL through the Flask test client.
"""

from __future__ import annotations

import re
from collections import deque
from datetime import timedelta
from html import unescape

from sqlalchemy import func, select, update
from werkzeug.routing import Rule

from mailer.desk import accounts, audit, sessions
from mailer.desk.pages import PUBLIC_ENDPOINTS
from mailer.models import DeskAudit, OptIn, utcnow
from tests.desk_fixtures import ADMIN, EDITOR, PASSWORD, Desk, desk, web_app  # noqa: F401
from tests.helpers import make_issue
from tests.web_fixtures import TOKEN_RE

COOKIE = "__Secure-mailer-desk"
SCRIPT = "<script>alert(1)</script>"
IMG = "<img src=x onerror=alert(1)>"
FORGED = "0" * 64
VARIABLE = re.compile(r"<(?:(\w+)(?:\([^)]*\))?:)?(\w+)>")
LINK = re.compile(r'(?:href|src)="(/desk[^"#]*)"')


def desk_rules(desk: Desk, method: str) -> list[Rule]:
    return [r for r in desk.web.app.url_map.iter_rules()
            if r.rule.startswith("/desk") and method in (r.methods or set()) and r.endpoint != "desk.script"]


def placeholder(rule: Rule) -> str:
    """The rule's path with each variable filled: a number for int converters, a word otherwise."""
    return VARIABLE.sub(lambda m: "999999" if m.group(1) in ("int", "float") else "x", rule.rule)


def audit_rows(desk: Desk) -> int:
    with desk.web.db.session() as session:
        return session.scalar(select(func.count()).select_from(DeskAudit)) or 0


def test_every_desk_url_needs_a_session(desk: Desk):
    client = desk.web.app.test_client()
    walked = 0
    for rule in desk.web.app.url_map.iter_rules():
        if not rule.rule.startswith("/desk") or rule.endpoint in PUBLIC_ENDPOINTS:
            continue
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            answer = client.open(placeholder(rule), method=method)
            walked += 1
            if rule.rule.endswith(".json"):
                assert answer.status_code == 401, (method, rule.rule)
            else:
                assert answer.status_code == 303 and answer.headers["Location"] == "/desk/login", (method, rule.rule)
            assert "Set-Cookie" not in answer.headers
    assert walked >= 12                   # issues, logout, the account and admin pages at least


def test_every_post_needs_the_session_csrf_token_and_our_origin(desk: Desk):
    rules = desk_rules(desk, "POST")
    assert len(rules) >= 12
    token = desk.token(desk.admin)
    before = audit_rows(desk)
    for rule in rules:
        path = placeholder(rule)
        client = desk.web.client if rule.endpoint in PUBLIC_ENDPOINTS else desk.admin
        good = TOKEN_RE.search(client.get("/desk/login").text).group(1) \
            if rule.endpoint in PUBLIC_ENDPOINTS else token
        assert client.post(path, data={"email": EDITOR}).status_code == 400, ("missing", rule.rule)
        assert client.post(path, data={"csrf_token": FORGED, "email": EDITOR}).status_code == 400, ("forged", rule.rule)
        for header in ({"Origin": "https://evil.example"}, {"Referer": "https://evil.example/page"}):
            answer = client.post(path, data={"csrf_token": good, "email": EDITOR}, headers=header)
            assert answer.status_code == 400, (header, rule.rule)
    assert audit_rows(desk) == before                # nothing any of them would do was done
    assert desk.admin.get("/desk/").status_code == 200 and desk.editor.get("/desk/").status_code == 200


def test_another_sessions_token_is_refused(desk: Desk):
    editor_token = desk.token(desk.editor)
    assert desk.admin.post("/desk/accounts/role", data={"csrf_token": editor_token, "email": EDITOR,
                                                         "role": "admin"}).status_code == 400
    assert [a.role for a in accounts.list_users(desk.web.db) if a.email == EDITOR] == ["editor"]


def test_a_cookie_planted_before_login_is_replaced(desk: Desk):
    client = desk.web.app.test_client()
    planted = "attacker-chosen-session-id-0123456789abcdef0123456"
    client.set_cookie(COOKIE, planted, path="/desk")
    assert client.get("/desk/").headers["Location"] == "/desk/login"       # an unknown id logs nobody in
    token = TOKEN_RE.search(client.get("/desk/login").text).group(1)
    done = client.post("/desk/login", data={"csrf_token": token, "email": EDITOR, "password": PASSWORD})
    assert done.status_code == 303
    now = client.get_cookie(COOKIE, path="/desk").value
    assert now != planted and sessions.current(desk.web.db, planted) is None
    # an attacker's own live session planted in a victim's browser ends when the victim logs in
    attacker = desk.admin.get_cookie(COOKIE, path="/desk").value
    victim = desk.web.app.test_client()
    victim.set_cookie(COOKIE, attacker, path="/desk")
    token = TOKEN_RE.search(desk.web.app.test_client().get("/desk/login").text).group(1)
    victim.post("/desk/login", data={"csrf_token": token, "email": EDITOR, "password": PASSWORD})
    assert victim.get_cookie(COOKIE, path="/desk").value != attacker
    assert sessions.current(desk.web.db, attacker) is None


def test_a_disabled_accounts_session_ends_at_its_next_request(desk: Desk):
    token = desk.token(desk.editor)
    assert desk.post(desk.admin, "/desk/accounts/disable", {"email": EDITOR},
                     form_page="/desk/accounts").status_code == 303
    for method, path, data in (("GET", "/desk/", None), ("GET", "/desk/account", None),
                               ("POST", "/desk/account/totp/start", {"csrf_token": token})):
        answer = desk.editor.open(path, method=method, data=data)
        assert answer.status_code == 303 and answer.headers["Location"] == "/desk/login", (method, path)


def test_an_editor_cannot_reach_account_management(desk: Desk):
    admin_rules = [r for r in desk.web.app.url_map.iter_rules()
                   if r.endpoint.startswith("desk.") and
                   desk.web.app.view_functions[r.endpoint].__module__ == "mailer.desk.pages.admin"]
    assert {r.rule for r in admin_rules} >= {"/desk/accounts", "/desk/audit", "/desk/accounts/add"}
    token = desk.token(desk.editor)
    for rule in admin_rules:
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            answer = desk.editor.open(placeholder(rule), method=method,
                                      data={"csrf_token": token, "email": EDITOR, "role": "admin", "require": "on"})
            assert answer.status_code == 403, (method, rule.rule)
    assert [a.role for a in accounts.list_users(desk.web.db) if a.email == EDITOR] == ["editor"]


def _attempt(desk: Desk, email: str, password: str) -> int:
    client = desk.web.app.test_client()
    token = TOKEN_RE.search(client.get("/desk/login").text).group(1)
    return client.post("/desk/login", data={"csrf_token": token, "email": email, "password": password}).status_code


def test_brute_force_locks_the_account_then_the_address_and_is_logged(desk: Desk):
    codes = [_attempt(desk, EDITOR, f"guess number {n}") for n in range(sessions.MAX_FAILS_PER_ACCOUNT)]
    assert codes == [401] * sessions.MAX_FAILS_PER_ACCOUNT
    assert _attempt(desk, EDITOR, PASSWORD) == 429                       # the right password, locked
    assert _attempt(desk, ADMIN, PASSWORD) == 303                        # another account still logs in
    for n in range(sessions.MAX_FAILS_PER_IP - sessions.MAX_FAILS_PER_ACCOUNT):
        assert _attempt(desk, f"guess{n}@example.org", "whatever it is") == 401
    assert _attempt(desk, ADMIN, PASSWORD) == 429                        # now this address is locked
    entries, _ = audit.entries(desk.web.db, action="login_failed", per_page=100)
    assert len(entries) == sessions.MAX_FAILS_PER_IP and {e.ip for e in entries} == {"127.0.0.1"}
    assert [e.target for e in audit.entries(desk.web.db, action="login_locked")[0]][:2] == [ADMIN, EDITOR]
    with desk.web.db.session() as session:                               # the lock ends with its window
        session.execute(update(DeskAudit).values(at=utcnow() - timedelta(minutes=16)))
    assert _attempt(desk, EDITOR, PASSWORD) == 303


def _make_hostile_objects(desk: Desk) -> None:
    """A list, a subscriber, an issue (subject and report title), audit entries and a failed login whose
    names carry script."""
    from mailer.people.directory import add_list, add_subscriber

    name = f"{SCRIPT}{IMG} hostile"
    add_list(desk.web.db, "hostile", f"{name} list", OptIn.SINGLE, f"{name} description")
    add_subscriber(desk.web.db, desk.web.settings, "hostile@example.org", f"{name} reader", "hostile", True)
    from mailer.people.tagging import add_segment
    add_segment(desk.web.db, "hostile", f'name contains "{SCRIPT}{IMG}"')     # shown on the segment pages
    make_issue(desk.web.settings.root, "2026-12-hostile", {"a.md": f"# {name} report\n\nText {SCRIPT}."},
               subject=f"{name} subject")
    audit.log(desk.web.db, "test_hostile", actor=name, target=name, detail=name)
    _attempt(desk, f"{SCRIPT}@example.org", "no password")                 # a login name in the audit log


def crawl(desk: Desk, client) -> dict[str, tuple[int, str]]:  # type: ignore[no-untyped-def]
    """Every desk page *client* reaches by GET: the URL map's routes without variables, then every
    /desk link and frame or image source on the pages found (up to 400 pages); path -> (status,
    the body when it is HTML, else '')."""
    start = [r.rule for r in desk_rules(desk, "GET") if not VARIABLE.search(r.rule) and r.endpoint != "desk.script"
             and r.endpoint not in PUBLIC_ENDPOINTS]
    queue, seen, pages = deque(start), set(start), {}
    while queue and len(pages) < 400:
        path = queue.popleft()
        answer = client.get(path)
        if "html" not in (answer.content_type or ""):    # text parts, CSV, JSON: not rendered as HTML
            pages[path] = (answer.status_code, "")
            continue
        pages[path] = (answer.status_code, answer.get_data(as_text=True))
        for found in LINK.findall(answer.get_data(as_text=True)):
            link = unescape(found)
            if link.startswith("/desk/js/") or link in seen or link == "/desk/logout":
                continue
            seen.add(link)
            queue.append(link)
    return pages


def test_script_in_any_name_renders_as_text_on_every_desk_page(desk: Desk):
    _make_hostile_objects(desk)
    for who, client in (("admin", desk.admin), ("editor", desk.editor)):
        pages = crawl(desk, client)
        assert len(pages) >= (4 if who == "admin" else 2), sorted(pages)
        shown = 0
        for path, (status, body) in pages.items():
            assert status < 500, (who, path, status)
            assert SCRIPT not in body and IMG not in body, (who, path)
            shown += "&lt;script&gt;alert(1)&lt;/script&gt;" in body
        assert shown >= 1, (who, sorted(pages))         # the hostile names were on some page, escaped
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in desk.admin.get("/desk/audit").text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in desk.admin.get("/desk/").text


def test_pages_with_variables_answer_a_placeholder_without_a_server_error(desk: Desk):
    for rule in desk_rules(desk, "GET"):
        if VARIABLE.search(rule.rule) and rule.endpoint not in PUBLIC_ENDPOINTS:
            answer = desk.admin.get(placeholder(rule))
            assert answer.status_code < 500, rule.rule
            if "html" in (answer.content_type or ""):
                assert SCRIPT not in answer.get_data(as_text=True)
