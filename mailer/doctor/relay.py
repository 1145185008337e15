"""The relay: which addresses mail leaves from, their reverse DNS (STANDARDS I4), TLS (STANDARDS I5)."""

from __future__ import annotations

import ipaddress
from typing import Iterator

from mailer.config import Settings
from mailer.doctor import Finding, fail, ok, warn
from mailer.doctor.dnsquery import Lookup
from mailer.errors import InputError

# addresses that are never what a receiving server sees (RFC 1918, CGNAT, loopback, link-local, ULA)
INTERNAL = [ipaddress.ip_network(n) for n in (
    "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
    "::1/128", "fe80::/10", "fc00::/7")]


def internal(ip: str) -> bool:
    address = ipaddress.ip_address(ip)
    return any(address in network for network in INTERNAL if network.version == address.version)


def config_findings(settings: Settings) -> Iterator[Finding]:
    """The delivery settings: a backend that sends, over TLS."""
    if settings.backend in ("file", "memory"):
        yield warn("config", f"backend is {settings.backend!r}: nothing leaves this machine",
                   'set backend = "smtp" and smtp.host to your relay')
    elif settings.smtp_security == "none" and not internal_host(settings.smtp_host):
        yield warn("config", f"smtp.security is none: mail and password go to {settings.smtp_host} unencrypted",
                   "set smtp.security to starttls (port 587) or tls (port 465)")
    else:
        yield ok("config", f"backend {settings.backend}, relay {settings.smtp_host}:{settings.smtp_port} "
                           f"({settings.smtp_security})")


def internal_host(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return internal(host)
    except ValueError:
        return False


def relay_addresses(lookup: Lookup, settings: Settings, given: tuple[str, ...]) -> tuple[list[str], list[Finding]]:
    """The public addresses mail leaves from: --relay-ip, else smtp.host's addresses in DNS.

    Empty, with a finding that says why, when they cannot be known (a relay on this machine or
    on a private network is seen from outside by another address).
    """
    if given:
        for ip in given:
            try:
                ipaddress.ip_address(ip)
            except ValueError:
                raise InputError(f"--relay-ip {ip!r}: not an IP address") from None
        ips = [str(ipaddress.ip_address(ip)) for ip in given]
        return ips, [ok("relay", f"mail leaves from {', '.join(ips)} (--relay-ip)")]
    host = settings.smtp_host
    if host == "localhost":
        ips = ["127.0.0.1"]
    else:
        try:
            ips = [str(ipaddress.ip_address(host))]
        except ValueError:
            ips = lookup.addresses(host)
    if not ips:
        return [], [fail("relay", f"smtp.host {host} has no A or AAAA record (DNS server {lookup.server})",
                         "set smtp.host to the relay's name as published in DNS, or pass --relay-ip")]
    public = [ip for ip in ips if not internal(ip)]
    if not public:
        return [], [warn("relay", f"smtp.host {host} is {', '.join(ips)}, a local address: SPF and PTR "
                                  "are checked on the address receivers see, which is another one",
                         "pass --relay-ip with the public address your mail leaves from")]
    return public, [ok("relay", f"smtp.host {host} is {', '.join(public)}")]


def ptr_findings(lookup: Lookup, ips: list[str]) -> Iterator[Finding]:
    """Forward-confirmed reverse DNS: IP -> PTR name -> the same IP."""
    for ip in ips:
        version = ipaddress.ip_address(ip).version
        names = lookup.ptr(ip)
        if not names:
            yield fail("ptr", f"{ip} has no PTR record (receivers distrust mail from it)",
                       f"ask the relay's hosting provider to set the PTR of {ip} to the relay's name")
            continue
        confirmed = [name for name in names
                     if any(ipaddress.ip_address(a) == ipaddress.ip_address(ip)
                            for a in lookup.addresses(name, version))]
        if confirmed:
            yield ok("ptr", f"{ip} -> {confirmed[0]} -> {ip} (forward-confirmed)")
        else:
            yield fail("ptr", f"{ip} -> {names[0]}, but {names[0]} does not resolve back to {ip}",
                       f"publish {'A' if version == 4 else 'AAAA'} {names[0]} -> {ip}, "
                       "or set the PTR to a name that resolves to it")
