"""Fixtures of the `mailer doctor` tests: keys and certificates (openssl), the web app over https,
the zone of a well set-up group, and a run of the command against a dnsmasq serving a zone.
"""

from __future__ import annotations

import base64
import ssl
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest
from click.testing import CliRunner, Result

from mailer.cli import cli
from mailer.config import Settings
from mailer.db import Database
from tests.dnsserver import DnsServer, Zone
from tests.helpers import TEST_ENV, free_port

RELAY = "192.0.2.10"


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def public_key_b64(private_key: Path) -> str:
    der = subprocess.run(["openssl", "rsa", "-in", str(private_key), "-pubout", "-outform", "DER"],
                         check=True, capture_output=True, timeout=60).stdout
    return base64.b64encode(der).decode()


@dataclass
class Material:
    dkim_key: Path
    dkim_public: str
    other_public: str
    ca: Path
    cert: Path
    cert_key: Path


@pytest.fixture(scope="module")
def material(tmp_path_factory: pytest.TempPathFactory) -> Material:
    """Two DKIM keys, and a CA with a certificate for 127.0.0.1 (openssl)."""
    d = tmp_path_factory.mktemp("doctor-keys")
    openssl("genrsa", "-out", "dkim.pem", "2048", cwd=d)
    openssl("genrsa", "-out", "other.pem", "2048", cwd=d)
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
            "-subj", "/CN=mailer doctor test CA", "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
            "-subj", "/CN=127.0.0.1", cwd=d)
    (d / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                               "extendedKeyUsage=serverAuth\n", encoding="utf-8")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", "server.pem", "-days", "2", "-extfile", "ext.cnf", cwd=d)
    return Material(d / "dkim.pem", public_key_b64(d / "dkim.pem"), public_key_b64(d / "other.pem"),
                    d / "ca.pem", d / "server.pem", d / "server.key")


@pytest.fixture(scope="module")
def https_base(material: Material, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """mailer's web app over https on a free loopback port; its base URL."""
    from werkzeug.serving import make_server

    from mailer.web import create_app, stop_app

    root = tmp_path_factory.mktemp("doctor-web")
    port = free_port()
    base = f"https://127.0.0.1:{port}"
    settings = Settings(root=root, database_url=f"sqlite:///{root}/web.db", base_url=base,
                        secret_keys=("k1",), hash_key="h1")
    db = Database(settings.resolved_database_url)
    db.upgrade()
    app = create_app(settings, db)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(material.cert, material.cert_key)
    server = make_server("127.0.0.1", port, app, threaded=True, ssl_context=context)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield base
    server.shutdown()
    thread.join(5)
    stop_app(app)
    db.dispose()


def good_zone(material: Material) -> Zone:
    """example.org as a group that did everything right: SPF through include and mx, DKIM, DMARC, PTR."""
    return (Zone()
            .txt("example.org", "v=spf1 mx include:_spf.example.org -all")
            .txt("_spf.example.org", "v=spf1 ip4:192.0.2.0/28 ip6:2001:db8::/32 ~all")
            .mx("example.org", "mx.example.org")
            .host("mx.example.org", "198.51.100.5")
            .host("relay.example.org", RELAY)
            .ptr(RELAY, "relay.example.org")
            .txt("mail._domainkey.example.org", f"v=DKIM1; k=rsa; p={material.dkim_public}")
            .txt("_dmarc.example.org", "v=DMARC1; p=none; rua=mailto:dmarc@example.org"))


def settings_env(material: Material, base_url: str, **overrides: str) -> dict[str, str]:
    env = {**TEST_ENV, "MAILER_BACKEND": "smtp", "MAILER_SMTP_HOST": "relay.example.org",
           "MAILER_FROM_EMAIL": "news@example.org", "MAILER_BOUNCE_ADDRESS": "bounces@example.org",
           "MAILER_SENDING_DOMAIN": "example.org", "MAILER_DKIM_SELECTOR": "mail",
           "MAILER_DKIM_DOMAIN": "example.org", "MAILER_DKIM_PRIVATE_KEY_FILE": str(material.dkim_key),
           "MAILER_BASE_URL": base_url}
    env.update({f"MAILER_{k.upper()}": v for k, v in overrides.items()})
    return env


@dataclass
class Run:
    result: Result

    @property
    def code(self) -> int:
        return self.result.exit_code

    @property
    def lines(self) -> list[str]:
        return self.result.output.splitlines()

    def line(self, check: str) -> str:
        found = [line for line in self.lines if line.split()[1:2] == [check]]
        assert len(found) == 1, f"expected one {check!r} line in:\n{self.result.output}"
        return found[0]


def doctor(project: Path, material: Material, zone: Zone | None, base_url: str, *args: str,
           **overrides: str) -> Run:
    server = DnsServer(zone or good_zone(material))
    try:
        result = CliRunner().invoke(cli, ["--root", str(project), "doctor", "--dns-server", server.address,
                                          "--ca-file", str(material.ca), "--timeout", "3", *args],
                                    env=settings_env(material, base_url, **overrides))
    finally:
        server.stop()
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return Run(result)
