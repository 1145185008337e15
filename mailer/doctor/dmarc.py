"""DMARC (STANDARDS I3): the policy record found by the DNS tree walk, and alignment with From.

The tree walk of DMARCbis (RFC 9989, 4.10): ask _dmarc.<domain>; if there is no valid record,
jump to the last seven labels when the name has eight or more, then drop one label at a time,
at most 8 queries. The first record found is the policy. The organisational domain is the one
with the fewest labels holding a record, unless a record says psd=n (that domain) or psd=y (the
domain one label below it); with no record at all it is the domain itself. Alignment compares
organisational domains (relaxed, the default) or the exact names (adkim=s, aspf=s).
"""

from __future__ import annotations

from typing import Iterator

from mailer.config import Settings
from mailer.doctor import Finding, fail, ok, warn
from mailer.doctor.dnsquery import Lookup
from mailer.doctor.domain import domain_of

MAX_QUERIES = 8
POLICIES = ("none", "quarantine", "reject")


def walk_names(domain: str) -> list[str]:
    """The names whose _dmarc record the tree walk asks for, in order."""
    labels = domain.lower().rstrip(".").split(".")
    names = [".".join(labels)]
    if len(labels) > 7:
        labels = labels[-7:]
        names.append(".".join(labels))
    while len(labels) > 1 and len(names) < MAX_QUERIES:
        labels = labels[1:]
        names.append(".".join(labels))
    return names


def parse_record(text: str) -> dict[str, str] | None:
    """The tags of a DMARC record, or None when *text* is not one (it must start with v=DMARC1)."""
    parts = [part.partition("=") for part in text.split(";") if part.strip()]
    if not parts or parts[0][0].strip() != "v" or parts[0][2].strip() != "DMARC1":
        return None
    tags: dict[str, str] = {}
    for key, sep, value in parts:
        if not sep:
            return None
        tags.setdefault(key.strip().lower(), value.strip())
    return tags


def record_at(lookup: Lookup, name: str) -> dict[str, str] | None:
    """The one valid DMARC record at _dmarc.<name>; none, or several, count as no record."""
    found = [tags for tags in map(parse_record, lookup.txt(f"_dmarc.{name}")) if tags is not None]
    return found[0] if len(found) == 1 else None


def records_along(lookup: Lookup, domain: str) -> list[tuple[str, dict[str, str]]]:
    """(name, tags) for every name of the walk that holds a record, nearest first."""
    return [(name, tags) for name in walk_names(domain) if (tags := record_at(lookup, name)) is not None]


def organisational_domain(lookup: Lookup, domain: str) -> str:
    domain = domain.lower().rstrip(".")
    found = records_along(lookup, domain)
    for name, tags in found:
        if tags.get("psd", "").lower() == "n":
            return name
        if tags.get("psd", "").lower() == "y":
            below = domain.split(".")[-(name.count(".") + 2):]
            return ".".join(below) if name != domain else domain
    return found[-1][0] if found else domain


def aligned(lookup: Lookup, domain: str, from_domain: str, mode: str) -> bool:
    if mode == "s":
        return domain == from_domain
    return organisational_domain(lookup, domain) == organisational_domain(lookup, from_domain)


def dmarc_findings(lookup: Lookup, settings: Settings) -> Iterator[Finding]:
    """For the From domain of newsletters (and of confirmation mails, when another one): the
    policy, its reports address, and whether SPF or DKIM aligns with that From."""
    domains = [domain_of(settings.from_email)]
    if settings.transactional_from_email and domain_of(settings.transactional_from_email) not in domains:
        domains.append(domain_of(settings.transactional_from_email))
    for from_domain in domains:
        yield from _policy(lookup, settings, from_domain)


def _policy(lookup: Lookup, settings: Settings, from_domain: str) -> Iterator[Finding]:
    found = records_along(lookup, from_domain)
    if not found:
        asked = ", ".join(f"_dmarc.{name}" for name in walk_names(from_domain))
        yield fail("dmarc", f"no DMARC record for {from_domain} (asked {asked})",
                   f'publish TXT at _dmarc.{from_domain}: "v=DMARC1; p=none; rua=mailto:dmarc@{from_domain}"')
        return
    name, tags = found[0]
    where = f"_dmarc.{name}" + ("" if name == from_domain else
                                f", the organisational domain of {from_domain} found by the tree walk")
    policy = tags.get("p", "")
    if name != from_domain:
        policy = tags.get("sp", policy)
    if policy.lower() not in POLICIES:
        yield fail("dmarc", f"the DMARC record at {where} has no valid p= (found {policy or 'none'!r})",
                   f"set p=none (to start), quarantine or reject in the record at _dmarc.{name}")
    elif "rua" not in tags:
        yield warn("dmarc", f"DMARC p={policy} at {where}, but no rua= to receive aggregate reports",
                   f"add rua=mailto:dmarc@{name} to the record at _dmarc.{name}")
    else:
        yield ok("dmarc", f"DMARC p={policy} at {where}; reports to {tags['rua']}")
    yield from _alignment(lookup, settings, from_domain, tags)


def _alignment(lookup: Lookup, settings: Settings, from_domain: str, tags: dict[str, str]) -> Iterator[Finding]:
    adkim, aspf = tags.get("adkim", "r").lower(), tags.get("aspf", "r").lower()
    bounce_domain = domain_of(settings.bounce_address)
    dkim_domain = settings.dkim_domain.lower() if settings.dkim_selector and settings.dkim_private_key_file else ""
    by = []
    if dkim_domain and aligned(lookup, dkim_domain, from_domain, adkim):
        by.append(f"DKIM (d={dkim_domain})")
    if aligned(lookup, bounce_domain, from_domain, aspf):
        by.append(f"SPF (bounce_address domain {bounce_domain})")
    if by:
        yield ok("alignment", f"From {from_domain} aligns by {' and '.join(by)}")
        return
    org = organisational_domain(lookup, from_domain)
    strict = " (strict: adkim=s/aspf=s)" if "s" in (adkim, aspf) else ""
    yield fail("alignment", f"neither DKIM d={dkim_domain or '(off)'} nor the bounce domain {bounce_domain} "
                            f"aligns with From {from_domain}{strict}: DMARC fails for every message",
               f"set dkim.domain or bounce_address to a domain under {org}")
