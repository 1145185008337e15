"""SPF (STANDARDS I1) and DKIM (STANDARDS I2) findings for the sending domain."""

from __future__ import annotations

import base64
import ipaddress
from typing import Iterator

from mailer.config import Settings
from mailer.doctor import Finding, fail, ok, warn
from mailer.doctor.dnsquery import Lookup
from mailer.doctor.spf import MAX_LOOKUPS, check_host
from mailer.errors import ConfigError

ANY_HOST = "203.0.113.1"   # TEST-NET-3 (RFC 5737): never a real sender, so only a +all lets it pass


def domain_of(address: str) -> str:
    return address.rpartition("@")[2].lower().rstrip(".")


def spf_findings(lookup: Lookup, settings: Settings, relay_ips: list[str]) -> Iterator[Finding]:
    """Does the envelope sender's domain (the bounce address, what SPF checks) allow each relay IP?"""
    domain = domain_of(settings.bounce_address)
    for ip in relay_ips:
        mechanism = "ip4" if ipaddress.ip_address(ip).version == 4 else "ip6"
        outcome = check_host(lookup, ip, domain, settings.bounce_address, helo=settings.smtp_host)
        result, term = outcome.result, outcome.term
        if result == "pass" and check_host(lookup, ANY_HOST, domain, settings.bounce_address).result == "pass":
            yield warn("spf", f"{domain} allows {ip}, and any host on the internet too ({ANY_HOST} passes)",
                       f"end the SPF record at {domain} with -all or ~all, not +all")
        elif result == "pass":
            yield ok("spf", f"{domain} allows {ip} ({term}; {outcome.lookups} of {MAX_LOOKUPS} DNS lookups)")
        elif result == "none":
            yield fail("spf", f"{domain} (the domain of bounce_address) has no SPF record",
                       f'publish a TXT record at {domain}: "v=spf1 {mechanism}:{ip} -all"')
        elif result == "permerror":
            yield fail("spf", f"the SPF record of {domain} is broken: {outcome.reason}",
                       f"correct the TXT record at {domain} (RFC 7208)")
        elif result == "temperror":
            yield fail("spf", f"SPF of {domain} could not be checked: {outcome.reason}",
                       "try again; if it stays, ask the DNS host of the domain")
        else:
            decided = f" by {term}" if term else " (no term matched)"
            yield fail("spf", f"{domain} does not allow the relay {ip}: SPF {result}{decided}",
                       f"add {mechanism}:{ip} (or your mail provider's include:) before the all term "
                       f"of the SPF record at {domain}")


def dkim_findings(lookup: Lookup, settings: Settings) -> Iterator[Finding]:
    """Is the public key at selector._domainkey.domain the one of dkim.private_key_file?"""
    from mailer.mail.dkim import signer_from_settings

    try:
        signer = signer_from_settings(settings)
    except ConfigError as exc:
        yield fail("dkim", str(exc), "set dkim.selector, dkim.domain and dkim.private_key_file (README, DKIM)")
        return
    if signer is None:
        yield warn("dkim", "DKIM signing is off (Gmail and Yahoo require it of bulk senders)",
                   "generate a key and set dkim.selector, dkim.domain and dkim.private_key_file (README, DKIM)")
        return
    name = f"{settings.dkim_selector}._domainkey.{settings.dkim_domain}"
    key_file = settings.dkim_private_key_file
    publish = (f"publish TXT at {name}: \"v=DKIM1; k=rsa; p=<key>\" with <key> from "
               f"`openssl rsa -in {key_file} -pubout -outform DER | base64 -w0`")
    records = [r for r in lookup.txt(name) if r.strip()]
    if not records:
        yield fail("dkim", f"no DKIM key at {name}", publish)
        return
    if len(records) > 1:
        yield fail("dkim", f"{name} holds {len(records)} TXT records; verifiers need exactly one",
                   f"keep only the DKIM record at {name}")
        return
    from dkim.crypto import UnparsableKeyError, parse_pem_private_key, parse_public_key
    from dkim.util import InvalidTagValueList, parse_tag_value

    try:
        tags = {k.decode().lower(): v.decode() for k, v in parse_tag_value(records[0].encode()).items()}
    except (InvalidTagValueList, UnicodeDecodeError):
        yield fail("dkim", f"the record at {name} is not a DKIM key record", publish)
        return
    p = "".join(tags.get("p", "").split())
    if not p:
        yield fail("dkim", f"the key at {name} is revoked (empty p=)", publish)
        return
    if tags.get("k", "rsa").lower() != "rsa":
        yield fail("dkim", f"the key at {name} is k={tags['k']}; dkim.private_key_file is an RSA key", publish)
        return
    try:
        public = parse_public_key(base64.b64decode(p, validate=True))
    except (UnparsableKeyError, ValueError):
        yield fail("dkim", f"p= at {name} is not an RSA public key", publish)
        return
    try:
        private = parse_pem_private_key(signer.private_key)
    except UnparsableKeyError:
        yield fail("dkim", f"dkim.private_key_file {key_file} is not an RSA private key",
                   f"generate one: openssl genrsa -out {key_file} 2048")
        return
    if (public["modulus"], public["publicExponent"]) != (private["modulus"], private["publicExponent"]):
        yield fail("dkim", f"the key at {name} does not match dkim.private_key_file: receivers will "
                           "reject every signature", publish + " (or set dkim.selector to the selector "
                                                                "that holds this key)")
        return
    bits = public["modulus"].bit_length()
    hashes = [h.strip().lower() for h in tags.get("h", "sha256").split(":")]
    if "sha256" not in hashes:
        yield fail("dkim", f"the key at {name} allows only h={tags['h']}; messages are signed rsa-sha256",
                   f"remove h= from the record at {name}")
    elif bits < 1024:
        yield fail("dkim", f"the key at {name} has {bits} bits; verifiers ignore keys under 1024 bits",
                   f"generate a 2048-bit key (openssl genrsa -out {key_file} 2048) and publish it")
    elif "y" in [f.strip().lower() for f in tags.get("t", "").split(":")]:
        yield warn("dkim", f"the key at {name} matches but is in testing mode (t=y)",
                   f"remove t=y from the record at {name}")
    elif bits < 2048:
        yield warn("dkim", f"the key at {name} matches dkim.private_key_file but has {bits} bits",
                   "2048 bits are recommended: generate a new key under a new selector")
    else:
        yield ok("dkim", f"the key at {name} matches dkim.private_key_file ({bits}-bit RSA)")


def bounce_findings(lookup: Lookup, settings: Settings) -> Iterator[Finding]:
    """Can bounces reach bounce_address? Its domain needs an MX (or, by RFC 5321 5.1, an address)."""
    domain = domain_of(settings.bounce_address)
    exchanges = lookup.mx(domain)
    if exchanges == ["."]:   # RFC 7505
        yield fail("bounces", f"{domain} says it receives no mail (null MX) but bounce_address is there",
                   "set bounce_address to a mailbox on a domain that receives mail")
    elif exchanges:
        yield ok("bounces", f"{domain} receives the bounces (MX {exchanges[0]})")
    elif lookup.addresses(domain):
        yield warn("bounces", f"{domain} has no MX; bounces go to its A/AAAA address",
                   f"publish an MX record for {domain} naming your mail server")
    else:
        yield fail("bounces", f"{domain} has no MX and no address: bounces to {settings.bounce_address} are lost",
                   f"publish an MX record for {domain}, or set bounce_address to a mailbox that receives mail")
