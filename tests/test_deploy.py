"""docs/deploy/ is what a server runs: the systemd units pass `systemd-analyze verify`, every folder a
sandboxed unit writes exists before the sandbox needs it, and the Caddyfile's site block really
proxies over TLS to a running `mailer serve --production`."""

from __future__ import annotations

import os
import re
import shutil
import ssl
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from mailer.db import Database
from mailer.models import MailingList
from tests.conftest import REPO
from tests.helpers import TEST_ENV, free_port, wait_for

DEPLOY = REPO / "docs" / "deploy"
UNITS = sorted(DEPLOY.glob("*.service"))
MAILER = Path(sys.executable).parent / "mailer"


def directives(unit: Path, key: str) -> list[str]:
    return [line.split("=", 1)[1] for line in unit.read_text().splitlines() if line.startswith(f"{key}=")]


def test_the_three_services_are_there():
    commands = {unit.name: directives(unit, "ExecStart") for unit in UNITS}
    assert commands == {
        "mailer-scheduler.service": ["/srv/news/.venv/bin/mailer scheduler"],
        "mailer-web.service": ["/srv/news/.venv/bin/mailer serve --production --host 127.0.0.1 --port 8025 "
                               "--threads 8"],
        "mailer-worker.service": ["/srv/news/.venv/bin/mailer worker"]}
    assert not (REPO / "docs" / "scheduler.service").exists()


@pytest.mark.parametrize("unit", UNITS, ids=[u.name for u in UNITS])
def test_every_writable_path_exists_before_the_sandbox_needs_it(unit):
    """ReadWritePaths= of a missing folder fails the start: each is made by an ExecStartPre=+ or optional."""
    made: set[str] = set()
    for command in directives(unit, "ExecStartPre"):
        if re.match(r"\+\S*/install -d ", command):
            made.update(word for word in command.split() if word.startswith("/srv/"))
    paths = [path for value in directives(unit, "ReadWritePaths") for path in value.split()]
    assert paths, f"{unit.name} writes nowhere?"
    for path in paths:
        assert path.startswith("-") or path in made, f"{unit.name}: {path} may not exist at start"


@pytest.mark.parametrize("unit", UNITS, ids=[u.name for u in UNITS])
def test_units_pass_systemd_analyze_verify(unit, tmp_path):
    """With the example paths pointed at this machine's (the program must exist), no error, no warning."""
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed (Debian: systemd)")
    (tmp_path / "srv").mkdir()
    (tmp_path / "mailer.env").write_text("MAILER_HASH_KEY=x\n")
    text = (unit.read_text().replace("/srv/news/.venv/bin/mailer", str(MAILER))
            .replace("/srv/news", str(tmp_path / "srv")).replace("/etc/mailer/mailer.env", str(tmp_path / "mailer.env")))
    local = tmp_path / unit.name
    local.write_text(text)
    done = subprocess.run(["systemd-analyze", "verify", "--man=no", str(local)], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0 and done.stderr == "", done.stderr


def test_a_broken_unit_fails_the_same_check(tmp_path):
    """The check above can fail: an unknown key or a bad value is reported."""
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed (Debian: systemd)")
    unit = tmp_path / "broken.service"
    unit.write_text(f"[Service]\nExecStart={MAILER} worker\nRestartSec=soon\nReadWritePath=/tmp\n")
    done = subprocess.run(["systemd-analyze", "verify", "--man=no", str(unit)], capture_output=True, text=True,
                          timeout=60)
    assert "RestartSec" in done.stderr or "soon" in done.stderr
    assert "ReadWritePath" in done.stderr


def test_caddyfile_proxies_over_tls_to_mailer_serve(settings, tmp_path):
    """The documented site block, with Caddy's internal CA instead of Let's Encrypt and test ports."""
    if shutil.which("caddy") is None:
        pytest.skip("caddy is not installed (Debian: caddy)")
    db = Database(settings.resolved_database_url)
    db.upgrade()
    with db.session() as session:
        session.add(MailingList(slug="news", name="Riverside News"))
    db.dispose()
    app_port, http_port, https_port = free_port(), free_port(), free_port()
    env = {**os.environ, **TEST_ENV, "MAILER_ROOT": str(settings.root), "MAILER_DATABASE_URL": settings.database_url,
           "MAILER_BASE_URL": f"https://localhost:{https_port}", "MAILER_WEB_TRUST_PROXY": "true",
           "MAILER_BACKEND": "file"}
    caddyfile = (DEPLOY / "Caddyfile").read_text()
    site = caddyfile[caddyfile.index("news.our-group.example {"):]
    assert "reverse_proxy 127.0.0.1:8025" in site
    site = site.replace("news.our-group.example", "localhost").replace("127.0.0.1:8025", f"127.0.0.1:{app_port}")
    storage = tmp_path / "caddy"
    config = tmp_path / "Caddyfile"
    config.write_text(f"{{\n\tadmin off\n\thttp_port {http_port}\n\thttps_port {https_port}\n\tlocal_certs\n"
                      f"\tskip_install_trust\n\tstorage file_system {storage}\n}}\n\n{site}")
    caddy_env = {**os.environ, "HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "config"),
                 "XDG_DATA_HOME": str(tmp_path / "data")}
    app = subprocess.Popen([str(MAILER), "serve", "--production", "--host", "127.0.0.1", "--port", str(app_port)],
                           env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    proxy = subprocess.Popen(["caddy", "run", "--config", str(config), "--adapter", "caddyfile"], env=caddy_env,
                             stdout=subprocess.DEVNULL, stderr=open(tmp_path / "caddy.log", "wb"))
    try:
        root = storage / "pki" / "authorities" / "local" / "root.crt"
        wait_for(root.exists, 30, "Caddy's local CA")
        context = ssl.create_default_context(cafile=str(root))

        def fetch() -> tuple[int, dict[str, str], str] | None:
            try:
                with urllib.request.urlopen(f"https://localhost:{https_port}/subscribe/news", context=context,
                                            timeout=5) as answer:
                    return answer.status, dict(answer.headers), answer.read().decode()
            except (urllib.error.URLError, ConnectionError, ssl.SSLError):
                return None

        answers: list[tuple[int, dict[str, str], str]] = []
        wait_for(lambda: answers.append(fetch()) or answers[-1] is not None, 60,   # type: ignore[func-returns-value]
                 f"the page through Caddy ({(tmp_path / 'caddy.log').read_text(errors='replace')[-300:]})")
        status, headers, body = answers[-1]
        assert status == 200 and "Subscribe to Riverside News" in body
        assert headers["Strict-Transport-Security"] == "max-age=31536000"          # from Caddy
        assert headers["Content-Security-Policy"].startswith("default-src 'none'")  # from mailer, passed through

        class NoRedirect(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *args, **kwargs):  # type: ignore[no-untyped-def]
                return None

        with pytest.raises(urllib.error.HTTPError) as plain:
            urllib.request.build_opener(NoRedirect).open(f"http://localhost:{http_port}/subscribe/news", timeout=5)
        assert plain.value.code in (301, 308)
        # Caddy 2.6 leaves a non-default https port out of its redirect
        assert re.match(rf"https://localhost(:{https_port})?/subscribe/news$", plain.value.headers["Location"])
    finally:
        for process in (proxy, app):
            process.terminate()
            process.wait(15)
