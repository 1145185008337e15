"""`mailer doctor` against a real DNS server on loopback (dnsmasq) and the real web app over https.

The zone of a well set-up group is built by `good_zone`; each test breaks one thing in it and
reads the doctor's line for that thing. Keys and certificates are made by openssl; the https
server is mailer's own web app under werkzeug with a certificate of a CA made for the test,
which the doctor trusts through --ca-file (tests/doctor_fixtures.py).
"""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

import pytest
from click.testing import CliRunner

from mailer.cli import cli
from tests import dnsserver
from tests.dnsserver import DnsServer
from tests.doctor_fixtures import (RELAY, Material, Run, doctor, good_zone, https_base,  # noqa: F401
                                   material, settings_env)

pytestmark = pytest.mark.skipif(not dnsserver.available() or not shutil.which("openssl"),
                                reason="dnsmasq (apt-get install dnsmasq-base) or openssl missing")


def test_all_good_exits_0_with_every_check_ok(project: Path, material: Material, https_base: str):
    run = doctor(project, material, None, https_base)
    assert run.code == 0, run.result.output
    checks = [line.split()[1] for line in run.lines[:-1]]
    assert checks == ["config", "relay", "spf", "bounces", "dkim", "dmarc", "alignment", "ptr", "https",
                      "one-click"]
    assert all(line.startswith("ok ") for line in run.lines[:-1]), run.result.output
    assert f"example.org allows {RELAY} (include:_spf.example.org;" in run.line("spf")
    assert "matches dkim.private_key_file (2048-bit RSA)" in run.line("dkim")
    assert f"{RELAY} -> relay.example.org -> {RELAY}" in run.line("ptr")
    assert "answers 400 to a token that does not verify" in run.line("one-click")
    assert run.line("bounces") == "ok    bounces   example.org receives the bounces (MX mx.example.org)"
    assert run.lines[-1] == "10 ok, 0 warn, 0 fail"


def test_no_spf_record_fails_with_the_record_to_publish(project, material, https_base):
    zone = good_zone(material)
    zone.options = [o for o in zone.options if not o.startswith("--txt-record=example.org,")]
    run = doctor(project, material, zone, https_base)
    assert run.code == 1
    assert run.line("spf") == ('fail  spf       example.org (the domain of bounce_address) has no SPF record; '
                               f'fix: publish a TXT record at example.org: "v=spf1 ip4:{RELAY} -all"')


def test_spf_that_does_not_allow_the_relay_fails_naming_the_deciding_term(project, material, https_base):
    zone = good_zone(material)
    zone.options = [o.replace("ip4:192.0.2.0/28", "ip4:203.0.113.0/24") for o in zone.options]
    run = doctor(project, material, zone, https_base)
    assert run.code == 1
    line = run.line("spf")
    assert line.startswith(f"fail  spf       example.org does not allow the relay {RELAY}: SPF fail by -all")
    assert f"fix: add ip4:{RELAY}" in line


def test_dkim_key_in_dns_that_is_not_ours_fails(project, material, https_base):
    zone = good_zone(material)
    zone.options = [o.replace(material.dkim_public[:200], material.other_public[:200])
                    .replace(material.dkim_public[200:], material.other_public[200:]) for o in zone.options]
    run = doctor(project, material, zone, https_base)
    assert run.code == 1
    assert run.line("dkim").startswith("fail  dkim      the key at mail._domainkey.example.org does not match "
                                       "dkim.private_key_file")


def test_missing_dkim_key_fails_with_the_command_that_prints_it(project, material, https_base):
    run = doctor(project, material, good_zone(material), https_base, dkim_selector="other")
    assert "no DKIM key at other._domainkey.example.org" in run.line("dkim")
    assert f"openssl rsa -in {material.dkim_key} -pubout -outform DER | base64 -w0" in run.line("dkim")


def test_no_dmarc_record_fails_naming_every_name_asked(project, material, https_base):
    zone = good_zone(material)
    zone.options = [o for o in zone.options if "_dmarc" not in o]
    run = doctor(project, material, zone, https_base, from_email="news@letters.example.org")
    assert run.code == 1
    assert run.line("dmarc").startswith("fail  dmarc     no DMARC record for letters.example.org (asked "
                                        "_dmarc.letters.example.org, _dmarc.example.org, _dmarc.org)")


def test_dmarc_on_the_organisational_domain_is_found_by_the_tree_walk(project, material, https_base):
    run = doctor(project, material, good_zone(material), https_base,
                 from_email="news@a.b.c.d.e.f.g.h.letters.example.org")
    assert run.line("dmarc") == (
        "ok    dmarc     DMARC p=none at _dmarc.example.org, the organisational domain of "
        "a.b.c.d.e.f.g.h.letters.example.org found by the tree walk; reports to mailto:dmarc@example.org")
    assert "aligns by DKIM (d=example.org) and SPF" in run.line("alignment")
    assert run.code == 0


def test_neither_dkim_nor_spf_aligned_with_from_fails(project, material, https_base):
    zone = good_zone(material).txt("_dmarc.example.net", "v=DMARC1; p=reject; rua=mailto:d@example.net")
    run = doctor(project, material, zone, https_base, from_email="news@example.net")
    assert run.code == 1
    assert run.line("alignment").startswith(
        "fail  alignment neither DKIM d=example.org nor the bounce domain example.org aligns with From example.net")


def test_ptr_that_does_not_resolve_back_fails(project, material, https_base):
    zone = good_zone(material)
    zone.options = [o for o in zone.options if not o.startswith("--ptr-record")]
    zone.ptr(RELAY, "host-10.example.com")
    run = doctor(project, material, zone, https_base)
    assert run.code == 1
    assert run.line("ptr").startswith(f"fail  ptr       {RELAY} -> host-10.example.com, but host-10.example.com "
                                      f"does not resolve back to {RELAY}; fix: publish A host-10.example.com")


def test_base_url_not_https_fails(project, material, https_base):
    run = doctor(project, material, None, "http://127.0.0.1:1")
    assert run.code == 1
    assert run.line("https").startswith("fail  https     base_url http://127.0.0.1:1 is not https")


def test_certificate_that_does_not_verify_fails_and_one_click_is_not_checked(project, material, https_base):
    server = DnsServer(good_zone(material))
    try:
        result = CliRunner().invoke(cli, ["--root", str(project), "doctor", "--dns-server", server.address],
                                    env=settings_env(material, https_base))
    finally:
        server.stop()
    run = Run(result)
    assert run.code == 1
    assert run.line("https").startswith(f"fail  https     {https_base}: the certificate does not verify: "
                                        "unable to get local issuer certificate")
    assert run.line("one-click").startswith("warn  one-click not checked")


def test_dns_server_that_never_answers_is_one_line_naming_it(project, material, https_base):
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.0.0.1", 0))
    port = silent.getsockname()[1]
    try:
        result = CliRunner().invoke(cli, ["--root", str(project), "doctor", "--dns-server", f"127.0.0.1:{port}",
                                          "--timeout", "0.5", "--ca-file", str(material.ca)],
                                    env=settings_env(material, https_base))
    finally:
        silent.close()
    assert result.exit_code == 1 and result.exception is not None and isinstance(result.exception, SystemExit)
    naming = [line for line in result.output.splitlines() if f"127.0.0.1:{port}" in line]
    assert naming == [f"fail  dns       DNS server 127.0.0.1:{port} did not answer within 0.5 s (asked A "
                      "relay.example.org); the remaining DNS checks did not run; fix: check --dns-server "
                      "(or /etc/resolv.conf) and the network, or raise --timeout"]
    assert "Traceback" not in result.output
    assert "ok    https" in result.output   # the web checks still ran


def test_bad_dns_server_option_is_one_error_line(project, material):
    result = CliRunner().invoke(cli, ["--root", str(project), "doctor", "--dns-server", "dns.example:53"],
                                env=settings_env(material, "https://news.example.org"))
    assert result.exit_code == 2
    assert result.output.strip().splitlines()[-1] == (
        "error: --dns-server 'dns.example:53': expected IP, IP:PORT or [IPv6]:PORT (an address, not a name)")


def test_smtp_without_tls_to_a_remote_relay_is_a_warning_I5(project, material, https_base):
    run = doctor(project, material, None, https_base, smtp_security="none", smtp_port="25")
    assert run.line("config") == ("warn  config    smtp.security is none: mail and password go to relay.example.org "
                                  "unencrypted; fix: set smtp.security to starttls (port 587) or tls (port 465)")
    assert run.code == 0   # a warning alone does not fail


def test_relay_on_this_machine_is_a_warning_and_relay_ip_checks_the_public_address(project, material, https_base):
    run = doctor(project, material, None, https_base, smtp_host="localhost")
    assert run.line("relay").startswith("warn  relay     smtp.host localhost is 127.0.0.1, a local address")
    assert [line for line in run.lines if line.split()[1] in ("spf", "ptr")] == []
    run = doctor(project, material, None, https_base, "--relay-ip", "192.0.2.11", smtp_host="localhost")
    assert "example.org allows 192.0.2.11" in run.line("spf")
    assert run.line("ptr").startswith("fail  ptr       192.0.2.11 has no PTR record")


def test_the_tree_walk_asks_at_most_8_names_jumping_to_the_last_7_labels():
    from mailer.doctor.dmarc import walk_names

    assert walk_names("a.b.c.d.e.f.g.h.example.org") == [
        "a.b.c.d.e.f.g.h.example.org", "d.e.f.g.h.example.org", "e.f.g.h.example.org", "f.g.h.example.org",
        "g.h.example.org", "h.example.org", "example.org", "org"]
    assert walk_names("news.example.org") == ["news.example.org", "example.org", "org"]


def test_a_server_that_refuses_a_query_fails_that_check_and_the_others_run(project, material, https_base):
    server = DnsServer(good_zone(material), authoritative=False)   # _dmarc.org: REFUSED
    try:   # --relay-ip: the AAAA of relay.example.org would be REFUSED too
        result = CliRunner().invoke(cli, ["--root", str(project), "doctor", "--dns-server", server.address,
                                          "--ca-file", str(material.ca), "--relay-ip", RELAY],
                                    env=settings_env(material, https_base))
    finally:
        server.stop()
    run = Run(result)
    assert run.code == 1
    assert run.line("dmarc").startswith(f"fail  dmarc     DNS server {server.address} failed to answer TXT "
                                        "_dmarc.org (SERVFAIL or REFUSED)")
    assert [line.split()[:2] for line in run.lines[:-1] if not line.startswith("ok ")] == [["fail", "dmarc"]]


def test_spf_that_lets_any_host_pass_is_a_warning(project, material, https_base):
    zone = good_zone(material)
    zone.options = [o.replace("include:_spf.example.org -all", "include:_spf.example.org +all") for o in zone.options]
    run = doctor(project, material, zone, https_base)
    assert run.line("spf") == (f"warn  spf       example.org allows {RELAY}, and any host on the internet too "
                               "(203.0.113.1 passes); fix: end the SPF record at example.org with -all or ~all, "
                               "not +all")


def test_bounce_domain_that_receives_no_mail_fails(project, material, https_base):
    run = doctor(project, material, None, https_base, bounce_address="bounces@nowhere.example.org")
    assert run.line("bounces") == (
        "fail  bounces   nowhere.example.org has no MX and no address: bounces to bounces@nowhere.example.org "
        "are lost; fix: publish an MX record for nowhere.example.org, or set bounce_address to a mailbox that "
        "receives mail")
    assert run.code == 1


def test_bounce_domain_with_a_null_mx_fails(project, material, https_base):
    zone = good_zone(material).mx("nomail.example.org", ".", 0)
    run = doctor(project, material, zone, https_base, bounce_address="bounces@nomail.example.org")
    assert run.line("bounces").startswith("fail  bounces   nomail.example.org says it receives no mail (null MX)")
