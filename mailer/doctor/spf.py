"""SPF's check_host() (RFC 7208) for one IP and domain, through the doctor's resolver.

No maintained library evaluates SPF for an IP through a resolver we choose (pyspf's last release
is from 2020 and queries through module-level state; checkdmarc parses records but does not
evaluate them), so this is the RFC's algorithm: the terms parsed before any is evaluated (a
syntax error anywhere is permerror), mechanisms in order, redirect= only when none matched, at
most 10 terms that query DNS (include, a, mx, ptr, exists, redirect), at most 10 MX or PTR names
per term, at most 2 void lookups, and macros (section 7) in domain-specs.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from mailer.doctor.dnsquery import DNSError, DNSTimeout, Lookup

QUALIFIERS = {"+": "pass", "-": "fail", "~": "softfail", "?": "neutral"}
MECHANISM = re.compile(r"([+\-~?]?)(all|include|a|mx|ptr|ip4|ip6|exists)(?=$|[:/])(?::([^/]*))?"
                       r"(?:/(\d+))?(?://(\d+))?$", re.IGNORECASE)
MODIFIER = re.compile(r"([a-z][a-z0-9_.\-]*)=(.*)$", re.IGNORECASE)
MACRO = re.compile(r"%\{([slodiphcrtv])(\d*)(r?)([.\-+,/_=]*)\}|%%|%_|%-", re.IGNORECASE)
MAX_LOOKUPS = 10
MAX_VOIDS = 2


class PermError(Exception):
    """The record is broken (syntax, too many lookups, a missing include target)."""


@dataclass(frozen=True)
class Term:
    qualifier: str
    name: str
    argument: str
    cidr4: int | None
    cidr6: int | None

    def __str__(self) -> str:
        text = self.qualifier if self.qualifier != "+" else ""
        text += self.name + (f":{self.argument}" if self.argument else "")
        text += f"/{self.cidr4}" if self.cidr4 is not None else ""
        return text + (f"//{self.cidr6}" if self.cidr6 is not None else "")


@dataclass(frozen=True)
class Outcome:
    """check_host's result; *term* is the mechanism that decided it, *reason* explains an error."""

    result: str
    term: str = ""
    reason: str = ""
    lookups: int = 0


def parse_record(record: str) -> tuple[list[Term], str | None]:
    """The mechanisms and the redirect= target of *record* (without its ``v=spf1``)."""
    terms: list[Term] = []
    redirect: str | None = None
    for text in record.split()[1:]:
        mechanism = MECHANISM.match(text)
        if mechanism:
            qualifier, name, argument, cidr4, cidr6 = mechanism.groups()
            name = name.lower()
            argument = argument or ""
            needs = name in ("include", "exists", "ip4", "ip6")
            if (needs and not argument) or (":" in text and not argument) \
                    or (name == "all" and (argument or cidr4 or cidr6)):
                raise PermError(f"malformed term {text!r}")
            if name in ("ip4", "ip6"):
                try:
                    network = ipaddress.ip_network(f"{argument}/{cidr4 or cidr6 or (32 if name == 'ip4' else 128)}",
                                                   strict=False)
                except ValueError:
                    raise PermError(f"malformed address in {text!r}") from None
                if network.version != int(name[-1]) or (cidr6 and name == "ip4"):
                    raise PermError(f"malformed address in {text!r}")
            c4, c6 = (int(cidr4) if cidr4 else None), (int(cidr6) if cidr6 else None)
            if (c4 is not None and c4 > 32 and name != "ip6") or (c6 is not None and c6 > 128) \
                    or (name == "ip6" and c4 is not None and c4 > 128):
                raise PermError(f"prefix length out of range in {text!r}")
            terms.append(Term(qualifier or "+", name, argument, c4, c6))
            continue
        modifier = MODIFIER.match(text)
        if modifier is None:
            raise PermError(f"unknown term {text!r}")
        if modifier.group(1).lower() == "redirect":
            if redirect is not None:
                raise PermError("more than one redirect= modifier")
            redirect = modifier.group(2)
    return terms, redirect


def check_host(lookup: Lookup, ip: str, domain: str, sender: str, helo: str = "") -> Outcome:
    """The SPF result for mail from *sender* (envelope) at *domain* sent by *ip*."""
    evaluation = _Evaluation(lookup, ipaddress.ip_address(ip), sender, helo or domain)
    try:
        result, term = evaluation.check(domain, top=True)
    except PermError as exc:
        return Outcome("permerror", reason=str(exc), lookups=evaluation.lookups)
    except DNSTimeout:
        raise
    except DNSError as exc:
        return Outcome("temperror", reason=str(exc), lookups=evaluation.lookups)
    return Outcome(result, term, lookups=evaluation.lookups)


class _Evaluation:
    def __init__(self, lookup: Lookup, ip: ipaddress.IPv4Address | ipaddress.IPv6Address,
                 sender: str, helo: str) -> None:
        self.lookup, self.ip, self.sender, self.helo = lookup, ip, sender, helo
        self.lookups = 0
        self.voids = 0

    def count(self) -> None:
        self.lookups += 1
        if self.lookups > MAX_LOOKUPS:
            raise PermError(f"more than {MAX_LOOKUPS} DNS lookups (RFC 7208 4.6.4); flatten includes")

    def answers(self, found: list) -> list:
        if not found:
            self.voids += 1
            if self.voids > MAX_VOIDS:
                raise PermError(f"more than {MAX_VOIDS} lookups found nothing (RFC 7208 4.6.4)")
        return found

    def record(self, domain: str) -> str | None:
        records = [t for t in self.lookup.txt(domain) if re.match(r"v=spf1( |$)", t, re.IGNORECASE)]
        if len(records) > 1:
            raise PermError(f"{domain} has {len(records)} SPF records; merge them into one")
        return records[0] if records else None

    def check(self, domain: str, top: bool = False) -> tuple[str, str]:
        record = self.record(domain)
        if record is None:
            return "none", ""
        terms, redirect = parse_record(record)
        for term in terms:
            if self.matches(term, domain):
                return QUALIFIERS[term.qualifier], str(term)
        if redirect is None:
            return "neutral", ""
        self.count()
        target = self.expand(redirect, domain)
        result, term = self.check(target)
        if result == "none":
            raise PermError(f"redirect={target} has no SPF record")
        return result, term

    def matches(self, term: Term, domain: str) -> bool:
        name, ip = term.name, self.ip
        if name == "all":
            return True
        if name in ("ip4", "ip6"):
            prefix = term.cidr4 if term.cidr4 is not None else term.cidr6
            network = ipaddress.ip_network(f"{term.argument}/{prefix if prefix is not None else ''}".rstrip("/"),
                                           strict=False)
            return network.version == ip.version and ip in network
        self.count()
        target = self.expand(term.argument, domain) if term.argument else domain
        if name == "include":
            result, _ = self.check(target)
            if result == "none":
                raise PermError(f"include:{target} has no SPF record")
            return result == "pass"
        if name == "exists":
            return bool(self.answers(self.lookup.addresses(target, 4)))
        if name == "ptr":
            names = self.lookup.ptr(str(ip))[:MAX_LOOKUPS]
            valid = [n for n in names if str(ip) in self.lookup.addresses(n, ip.version)]
            return any(n.lower() == target.lower() or n.lower().endswith("." + target.lower()) for n in valid)
        if name == "a":
            hosts = [target]
        else:
            hosts = self.answers(self.lookup.mx(target))
            if len(hosts) > MAX_LOOKUPS:
                raise PermError(f"mx:{target} has more than {MAX_LOOKUPS} MX records")
        prefix = term.cidr4 if ip.version == 4 else term.cidr6
        for host in hosts:
            for address in self.answers(self.lookup.addresses(host, ip.version)):
                network = ipaddress.ip_network(f"{address}/{prefix if prefix is not None else ip.max_prefixlen}",
                                               strict=False)
                if ip in network:
                    return True
        return False

    def expand(self, spec: str, domain: str) -> str:
        """A domain-spec with its macros expanded (RFC 7208 7), cut to 253 characters."""
        local, _, sender_domain = self.sender.rpartition("@")
        ip = self.ip
        values = {
            "s": self.sender, "l": local or "postmaster", "o": sender_domain or domain, "d": domain,
            "i": ".".join(ip.exploded.replace(":", "")) if ip.version == 6 else str(ip),
            "p": "unknown", "v": "in-addr" if ip.version == 4 else "ip6", "h": self.helo,
        }

        def replace(match: re.Match[str]) -> str:
            text = match.group(0)
            if text in ("%%", "%_", "%-"):
                return {"%%": "%", "%_": " ", "%-": "%20"}[text]
            letter, digits, reverse, delimiters = match.groups()
            if letter.lower() not in values:
                raise PermError(f"macro %{{{letter}}} is not allowed in a domain-spec")
            parts = re.split("[" + re.escape(delimiters or ".") + "]", values[letter.lower()])
            if reverse:
                parts.reverse()
            if digits:
                if int(digits) == 0:
                    raise PermError("a macro keeps at least one label")
                parts = parts[-int(digits):]
            return ".".join(parts)

        if "%" in MACRO.sub("", spec):
            raise PermError(f"malformed macro in {spec!r}")
        expanded = MACRO.sub(replace, spec).rstrip(".")
        while len(expanded) > 253 and "." in expanded:
            expanded = expanded.split(".", 1)[1]
        return expanded
