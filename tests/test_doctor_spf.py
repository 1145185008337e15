"""SPF's check_host (mailer.doctor.spf) against a real DNS server on loopback (dnsmasq)."""

from __future__ import annotations

from typing import Iterator

import pytest

from mailer.doctor.dnsquery import Lookup
from mailer.doctor.spf import Outcome, check_host
from tests import dnsserver
from tests.dnsserver import DnsServer, Zone

pytestmark = pytest.mark.skipif(not dnsserver.available(), reason="dnsmasq (apt-get install dnsmasq-base) missing")

RELAY = "192.0.2.10"


def evaluate(zone: Zone, ip: str = RELAY, domain: str = "example.org") -> Outcome:
    server = DnsServer(zone)
    try:
        return check_host(Lookup(server.address, 3), ip, domain, f"bounces@{domain}", helo="relay.example.org")
    finally:
        server.stop()


def test_include_a_mx_and_ip6_mechanisms_match():
    zone = (Zone().txt("example.org", "v=spf1 a:web.example.org mx include:_spf.example.org -all")
            .host("web.example.org", "198.51.100.1", "2001:db8::1")
            .mx("example.org", "mx.example.org").host("mx.example.org", "198.51.100.2")
            .txt("_spf.example.org", "v=spf1 ip4:192.0.2.0/28 ip6:2001:db8:1::/48 -all"))
    assert evaluate(zone, "198.51.100.1") == Outcome("pass", "a:web.example.org", lookups=1)
    assert evaluate(zone, "2001:db8::1") == Outcome("pass", "a:web.example.org", lookups=1)
    assert evaluate(zone, "198.51.100.2") == Outcome("pass", "mx", lookups=2)
    assert evaluate(zone, RELAY) == Outcome("pass", "include:_spf.example.org", lookups=3)
    assert evaluate(zone, "2001:db8:1::25").result == "pass"
    assert evaluate(zone, "203.0.113.9") == Outcome("fail", "-all", lookups=3)


def test_softfail_neutral_and_no_match_without_all():
    assert evaluate(Zone().txt("example.org", "v=spf1 ip4:203.0.113.0/24 ~all")).result == "softfail"
    assert evaluate(Zone().txt("example.org", "v=spf1 ip4:203.0.113.0/24")) == Outcome("neutral")
    assert evaluate(Zone()) == Outcome("none")


def test_over_ten_lookups_is_a_permerror():
    zone = Zone().txt("example.org", "v=spf1 " + " ".join(f"include:s{i}.example.org" for i in range(11)) + " -all")
    for i in range(11):
        zone.txt(f"s{i}.example.org", "v=spf1 ip4:203.0.113.1 -all")
    outcome = evaluate(zone)
    assert outcome.result == "permerror" and outcome.reason.startswith("more than 10 DNS lookups")


def test_more_than_two_void_lookups_is_a_permerror():
    zone = Zone().txt("example.org", "v=spf1 a:x1.example.org a:x2.example.org a:x3.example.org -all")
    outcome = evaluate(zone)
    assert outcome.result == "permerror" and "more than 2 lookups found nothing" in outcome.reason


def test_two_spf_records_and_an_include_without_one_are_permerrors():
    two = Zone().txt("example.org", "v=spf1 -all").txt("example.org", "v=spf1 ip4:192.0.2.10 -all")
    assert evaluate(two).reason == "example.org has 2 SPF records; merge them into one"
    dangling = Zone().txt("example.org", "v=spf1 include:gone.example.org -all")
    assert evaluate(dangling).reason == "include:gone.example.org has no SPF record"


def test_macros_and_redirect_are_evaluated():
    zone = (Zone().txt("example.org", "v=spf1 redirect=_r.example.org")
            .txt("_r.example.org", "v=spf1 exists:%{ir}.%{v}._allow.%{d2} -all")
            .host("10.2.0.192.in-addr._allow.example.org", "127.0.0.2"))
    assert evaluate(zone) == Outcome("pass", "exists:%{ir}.%{v}._allow.%{d2}", lookups=2)
    assert evaluate(zone, "192.0.2.11").result == "fail"


def test_ptr_mechanism_needs_a_forward_confirmed_name_under_the_domain():
    zone = (Zone().txt("example.org", "v=spf1 ptr -all").ptr(RELAY, "relay.example.org")
            .host("relay.example.org", RELAY))
    assert evaluate(zone).result == "pass"
    unconfirmed = Zone().txt("example.org", "v=spf1 ptr -all").ptr(RELAY, "relay.example.org")
    assert evaluate(unconfirmed).result == "fail"


@pytest.mark.parametrize("record, error", [
    ("v=spf1 ip4:300.1.1.1 -all", "malformed address in 'ip4:300.1.1.1'"),
    ("v=spf1 include: -all", "malformed term 'include:'"),
    ("v=spf1 ip4:192.0.2.0/33 -all", "malformed address in 'ip4:192.0.2.0/33'"),
    ("v=spf1 redirect=a.example.org redirect=b.example.org", "more than one redirect= modifier"),
    ("v=spf1 ip4:192.0.2.10 allx", "unknown term 'allx'"),
    ("v=spf1 exists:%{x}.example.org -all", "malformed macro"),
])
def test_a_syntax_error_anywhere_is_a_permerror_before_anything_is_evaluated(record, error):
    outcome = evaluate(Zone().txt("example.org", record))
    assert (outcome.result, error in outcome.reason) == ("permerror", True), outcome
