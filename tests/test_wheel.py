"""The wheel: built from this checkout, installed into a fresh virtual environment, used from an
empty folder outside the repository with nothing but the installed `mailer` command.

The wheel is built without build isolation (hatchling comes with the test extras, so nothing is
downloaded); its dependencies are installed from the package index as any user's would be.
"""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from email import message_from_bytes, policy
from pathlib import Path

import pytest

from tests.helpers import TEST_ENV, free_port, wait_for

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent


def run(args: list[str], **kwargs) -> subprocess.CompletedProcess[str]:  # type: ignore[no-untyped-def]
    """Run *args*; a non-zero exit fails the test and shows the output."""
    done = subprocess.run(args, capture_output=True, text=True, timeout=600, **kwargs)
    assert done.returncode == 0, f"{' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(out),
         str(ROOT)])
    (built,) = out.glob("mailer_newsroom-*-py3-none-any.whl")
    return built


@pytest.fixture(scope="module")
def venv_bin(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtual environment with the wheel (and its dependencies) installed: its bin/."""
    venv = tmp_path_factory.mktemp("venv")
    run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "-q", str(wheel)])
    return venv / "bin"


@pytest.fixture
def user(venv_bin: Path, tmp_path: Path):  # type: ignore[no-untyped-def]
    """`user("init")` runs the installed `mailer` in an empty folder, with a clean environment."""
    folder = tmp_path / "newsletter"
    folder.mkdir()
    env = {"PATH": f"{venv_bin}{os.pathsep}/usr/bin:/bin", "HOME": str(tmp_path), "LANG": "C.UTF-8",
           **TEST_ENV}

    def mailer(*args: str, extra: dict[str, str] | None = None) -> str:
        return run(["mailer", *args], cwd=folder, env={**env, **(extra or {})}).stdout

    mailer.folder = folder  # type: ignore[attr-defined]
    mailer.env = env  # type: ignore[attr-defined]
    return mailer


def _repo_files(folder: str) -> set[str]:
    return {str(p.relative_to(ROOT / folder)) for p in (ROOT / folder).rglob("*") if p.is_file()
            and "__pycache__" not in p.parts}


def test_wheel_holds_the_package_its_data_and_nothing_else(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for folder, inside in (("templates", "mailer/_data/templates"), ("issues/example", "mailer/_data/issues/example"),
                           ("mailer/migrations", "mailer/migrations")):
        missing = {f"{inside}/{name}" for name in _repo_files(folder)} - names
        assert not missing, f"the wheel lacks {sorted(missing)}"
    assert "mailer/_data/templates/web/site.css" in names
    assert any(n.startswith("mailer/migrations/versions/0001") for n in names)
    strays = sorted(n for n in names if not n.startswith(("mailer/", "mailer_newsroom-")))
    assert not strays, f"files outside the package: {strays}"
    assert not [n for n in names if "__pycache__" in n or n.endswith((".pyc", ".db", ".toml", ".pem", ".key"))
                and not n.startswith("mailer/_data/issues/example/")]
    assert not [n for n in names if re.search(r"(^|/)(tests?|bench|\.env|secrets?)(/|$)", n)]
    metadata = next(zipfile.Path(wheel, n).read_text() for n in names if n.endswith(".dist-info/METADATA"))
    assert "\nName: mailer-newsroom\n" in metadata
    assert "\nLicense-Expression: AGPL-3.0-or-later\n" in metadata
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    scripts = next(zipfile.Path(wheel, n).read_text() for n in names if n.endswith("entry_points.txt"))
    assert "mailer = mailer.cli:main" in scripts


def _get(url: str, data: dict[str, str] | None = None, origin: str | None = None) -> tuple[int, str]:
    body = urllib.parse.urlencode(data).encode() if data is not None else None
    request = urllib.request.Request(url, data=body, headers={"Origin": origin} if origin else {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def _answers(url: str) -> bool:
    try:
        return _get(url)[0] == 200
    except urllib.error.URLError:   # not listening yet
        return False


def _csrf(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found, page
    return found.group(1)


def _messages(outbox: Path, to: str) -> list:  # type: ignore[type-arg]
    found = [message_from_bytes(p.read_bytes(), policy=policy.default) for p in sorted(outbox.glob("*.eml"))]
    return [m for m in found if m["To"] and to in str(m["To"])]


def _link(message, pattern: str) -> str:  # type: ignore[no-untyped-def]
    text = message.get_body(("plain",)).get_content()
    found = re.search(pattern, text)
    assert found, text
    return found.group(0)


def test_installed_mailer_works_from_an_empty_folder(user, venv_bin: Path) -> None:  # type: ignore[no-untyped-def]
    where = run([str(venv_bin / "python"), "-c", "import mailer; print(mailer.__file__)"], env=user.env,
                cwd=user.folder).stdout
    assert where.startswith(str(venv_bin.parent)), f"mailer imported from {where}, not from the wheel"

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    site = {"MAILER_BASE_URL": base}
    user("init")
    assert (user.folder / "mailer.toml").is_file()
    user("lists", "add", "news", "Riverside news")

    assert "3 reports" not in user("new-issue", "Plain", "--slug", "plain")   # the scaffold: one report
    assert "composes (1 reports)" in user("compose", "issues/plain")
    user("new-issue", "Winter appeal", "--example", "--slug", "winter")
    assert sorted(p.name for p in (user.folder / "issues/winter/reports").iterdir()) == sorted(
        p.name for p in (ROOT / "issues/example/reports").iterdir())
    assert "composes (3 reports)" in user("compose", "issues/winter")
    user("preview", "issues/winter", extra=site)
    build = user.folder / "build" / "winter"
    assert {"index.html", "issue.html", "issue.txt", "sample.eml"} <= {p.name for p in build.iterdir()}
    html = (build / "issue.html").read_text(encoding="utf-8")
    assert "Winter appeal" in html and "bakery" in html.lower()

    server = subprocess.Popen(["mailer", "serve", "--port", str(port)], cwd=user.folder,
                              env={**user.env, **site}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: server.poll() is not None or _answers(f"{base}/static/site.css"), timeout=30,
                 what="mailer serve")
        assert server.poll() is None, server.stdout.read().decode()  # type: ignore[union-attr]
        status, css = _get(f"{base}/static/site.css")
        assert status == 200 and css == (ROOT / "templates/web/site.css").read_text(encoding="utf-8")
        for path in ("/embed/news", "/archive/", "/feed.xml"):
            assert _get(base + path)[0] == 200, path
        status, form = _get(f"{base}/subscribe/news")
        assert status == 200 and "Riverside news" in form

        status, thanks = _get(f"{base}/subscribe/news", origin=base, data={
            "csrf_token": _csrf(form), "email": "ada@example.net", "name": "Ada", "consent": "yes"})
        assert status == 200, thanks
        outbox = user.folder / "outbox"
        wait_for(lambda: _messages(outbox, "ada@example.net"), timeout=30, what="the confirmation mail")
        confirm = _link(_messages(outbox, "ada@example.net")[0], re.escape(base) + r"/confirm/\S+")
        status, button = _get(confirm)
        assert status == 200, button
        status, done = _get(confirm, origin=base, data={"csrf_token": _csrf(button)})
        assert status == 200 and "now subscribed" in done

        user("send", "issues/winter", "--list", "news", "--yes", extra=site)
        issue = [m for m in _messages(outbox, "ada@example.net") if "Winter appeal" in str(m["Subject"])]
        assert len(issue) == 1
        unsubscribe = re.search(r"<(https?://[^>]+)>", str(issue[0]["List-Unsubscribe"]))
        assert unsubscribe and unsubscribe.group(1).startswith(base)
        assert _get(unsubscribe.group(1))[0] == 200
        status, archive = _get(f"{base}/archive/")
        assert status == 200 and "Winter appeal" in archive
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_installed_mailer_finds_its_migrations(user) -> None:  # type: ignore[no-untyped-def]
    other = {"MAILER_DATABASE_URL": "sqlite:///elsewhere/other.db"}
    user("db", "upgrade", extra=other)
    assert "up to date" in user("db", "current", extra=other)
    user("db", "downgrade", "base", extra=other)
    assert "behind" in user("db", "current", extra=other)
    user("db", "upgrade", extra=other)
    assert "up to date" in user("db", "current", extra=other)
    with sqlite3.connect(user.folder / "elsewhere" / "other.db") as conn:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert "alembic_version" in tables and len(tables) > 5
