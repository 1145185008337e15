"""Every doctor check in order: the settings, the relay, SPF, bounces, DKIM, DMARC, PTR, then base_url."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Iterator

from mailer.config import Settings
from mailer.doctor import Finding, fail
from mailer.doctor.dmarc import dmarc_findings
from mailer.doctor.dnsquery import DNSError, DNSTimeout, Lookup
from mailer.doctor.domain import bounce_findings, dkim_findings, spf_findings
from mailer.doctor.relay import config_findings, ptr_findings, relay_addresses
from mailer.doctor.web import web_findings


@dataclass(frozen=True)
class Options:
    dns_server: str | None = None
    timeout: float = 5.0
    relay_ips: tuple[str, ...] = ()
    ca_file: str | None = None


def run_checks(settings: Settings, options: Options) -> Iterator[Finding]:
    """The findings, one by one as each check ends.

    A DNS server that does not answer ends the DNS checks with one line naming it; a failure
    of one query (SERVFAIL) is that check's line.
    """
    yield from config_findings(settings)
    lookup = Lookup(options.dns_server, options.timeout)
    try:
        relay_ips, found = _guard("relay", lambda: relay_addresses(lookup, settings, options.relay_ips))
        yield from found
        checks: list[tuple[str, Callable[[], Iterable[Finding]]]] = [
            ("spf", lambda: spf_findings(lookup, settings, relay_ips)),
            ("bounces", lambda: bounce_findings(lookup, settings)),
            ("dkim", lambda: dkim_findings(lookup, settings)),
            ("dmarc", lambda: dmarc_findings(lookup, settings)),
            ("ptr", lambda: ptr_findings(lookup, relay_ips)),
        ]
        for name, check in checks:
            try:
                yield from list(check())
            except DNSTimeout:
                raise
            except DNSError as exc:
                yield fail(name, str(exc), "try again; if it stays, ask the domain's DNS host")
    except DNSTimeout as exc:
        yield fail("dns", f"{exc}; the remaining DNS checks did not run",
                   "check --dns-server (or /etc/resolv.conf) and the network, or raise --timeout")
    yield from web_findings(settings, options.ca_file, options.timeout)


def _guard(name: str, step: Callable[[], tuple[list[str], list[Finding]]]) -> tuple[list[str], list[Finding]]:
    try:
        return step()
    except DNSTimeout:
        raise
    except DNSError as exc:
        return [], [fail(name, str(exc), "try again; if it stays, ask the domain's DNS host")]
