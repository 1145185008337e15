"""`mailer doctor`: checks of the configuration and the sending domain before a first send.

One module per concern: dnsquery (the resolver every DNS check goes through), spf (RFC 7208
check_host), domain (SPF, DKIM and DMARC findings), relay (the relay's addresses, PTR, TLS
setting), web (base_url over https, the one-click endpoint), run (all of them in order).
Each check yields Findings: one line each, with a status and, unless ok, the fix. This package
sits beside cli/ and imports only the floor (config, errors) and mailer.mail (DKIM key, links).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Status(enum.Enum):
    OK = "ok"
    WARN = "warn"
    FAIL = "fail"


@dataclass(frozen=True)
class Finding:
    """One result of one check: what was found and, when it is not ok, what to do."""

    check: str
    status: Status
    message: str
    fix: str = ""

    def line(self) -> str:
        text = f"{self.status.value:<4}  {self.check:<9} {self.message}"
        return f"{text}; fix: {self.fix}" if self.fix else text


def ok(check: str, message: str) -> Finding:
    return Finding(check, Status.OK, message)


def warn(check: str, message: str, fix: str = "") -> Finding:
    return Finding(check, Status.WARN, message, fix)


def fail(check: str, message: str, fix: str = "") -> Finding:
    return Finding(check, Status.FAIL, message, fix)
