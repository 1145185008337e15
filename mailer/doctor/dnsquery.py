"""The DNS resolver every doctor check goes through (dnspython), with one error line per failure.

A name that does not exist or has no record of the type asked answers an empty list; a server
that answers SERVFAIL or REFUSED raises DNSError; a server that does not answer within the
timeout raises DNSTimeout once and the lookup stays down, so later checks end at once instead
of each waiting out the timeout again.
"""

from __future__ import annotations

import ipaddress

from mailer.errors import InputError


class DNSError(Exception):
    """A query failed for a reason other than "no such record"; the message names the server."""


class DNSTimeout(DNSError):
    """The DNS server did not answer in time."""


def parse_server(value: str) -> tuple[str, int]:
    """``IP``, ``IP:PORT`` or ``[IPv6]:PORT`` as (ip, port); InputError naming the option otherwise."""
    host, port = value, "53"
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        if rest:
            if not rest.startswith(":"):
                raise InputError(f"--dns-server {value!r}: expected IP, IP:PORT or [IPv6]:PORT")
            port = rest[1:]
    elif value.count(":") == 1:
        host, port = value.split(":")
    try:
        ipaddress.ip_address(host)
        number = int(port)
        if not 0 < number < 65536:
            raise ValueError
    except ValueError:
        raise InputError(f"--dns-server {value!r}: expected IP, IP:PORT or [IPv6]:PORT "
                         "(an address, not a name)") from None
    return host, number


class Lookup:
    """Cached queries through one resolver: the servers given, or the system's (/etc/resolv.conf)."""

    def __init__(self, server: str | None = None, timeout: float = 5.0) -> None:
        import dns.resolver

        if server:
            ip, port = parse_server(server)
            self.resolver = dns.resolver.Resolver(configure=False)
            self.resolver.nameservers = [ip]
            self.resolver.port = port
            self.server = f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"
        else:
            try:
                self.resolver = dns.resolver.Resolver()
            except dns.resolver.NoResolverConfiguration:
                raise InputError("no DNS server in /etc/resolv.conf: pass --dns-server IP[:PORT]") from None
            self.server = ", ".join(str(n) for n in self.resolver.nameservers) or "the system resolver"
        self.resolver.timeout = timeout
        self.resolver.lifetime = timeout
        self.timeout = timeout
        self.down: DNSTimeout | None = None
        self._cache: dict[tuple[str, str], list] = {}

    def _query(self, name: str, rdtype: str) -> list:
        import dns.exception
        import dns.name
        import dns.resolver

        key = (name.lower().rstrip("."), rdtype)
        if key in self._cache:
            return self._cache[key]
        if self.down is not None:
            raise self.down
        try:
            answer = list(self.resolver.resolve(name, rdtype, search=False))
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            answer = []
        except dns.exception.Timeout:
            self.down = DNSTimeout(f"DNS server {self.server} did not answer within {self.timeout:g} s "
                                   f"(asked {rdtype} {name})")
            raise self.down from None
        except dns.resolver.NoNameservers:
            raise DNSError(f"DNS server {self.server} failed to answer {rdtype} {name} "
                           "(SERVFAIL or REFUSED)") from None
        except (dns.name.NameTooLong, dns.name.LabelTooLong, dns.name.EmptyLabel) as exc:
            raise DNSError(f"{name!r} is not a valid DNS name: {exc}") from None
        except dns.exception.DNSException as exc:
            raise DNSError(f"DNS server {self.server}: {rdtype} {name}: {exc}") from None
        self._cache[key] = answer
        return answer

    def txt(self, name: str) -> list[str]:
        """Each TXT record at *name*, its strings joined (RFC 7208 3.3, RFC 6376 3.6.2.2)."""
        return [b"".join(r.strings).decode("utf-8", "replace") for r in self._query(name, "TXT")]

    def addresses(self, name: str, version: int | None = None) -> list[str]:
        """The A (version 4) and/or AAAA (version 6) addresses of *name*."""
        types = {4: ("A",), 6: ("AAAA",)}.get(version or 0, ("A", "AAAA"))
        return [r.address for rdtype in types for r in self._query(name, rdtype)]

    def mx(self, name: str) -> list[str]:
        """The exchanges of *name*, lowest preference first, without the trailing dot ("." is a null MX)."""
        records = sorted(self._query(name, "MX"), key=lambda r: r.preference)
        return [r.exchange.to_text(omit_final_dot=True) for r in records]

    def ptr(self, ip: str) -> list[str]:
        """The names of *ip* (reverse DNS), without the trailing dot."""
        import dns.reversename

        name = dns.reversename.from_address(ip).to_text()
        return [r.target.to_text(omit_final_dot=True) for r in self._query(name, "PTR")]
