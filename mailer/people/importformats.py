"""Exports of other newsletter tools, mapped onto an import's columns: Mailchimp, Substack, listmonk.

A file is recognised by its header (or named with ``--from``); each row is then mapped:
names joined into `name`, opt-in and confirmation times and IPs kept for the consent
record, tags read, and the rows that the other tool says must not be mailed marked as
suppressions (never subscriptions). Columns a format does not know stay attributes.

The columns, as the tools write them (researched, not guessed):

- Mailchimp audience export (a zip of subscribed, unsubscribed and cleaned CSVs; see
  mailchimp.com/developer/marketing/docs/account-exports and
  ginkgo.st/~ca/roadmap/mailchimp-and-civicrm-overview/notes-on-mailchimp-data-exports):
  ``Email Address, First Name, Last Name, [merge fields...], MEMBER_RATING, OPTIN_TIME,
  OPTIN_IP, CONFIRM_TIME, CONFIRM_IP, LATITUDE, LONGITUDE, GMTOFF, DSTOFF, TIMEZONE, CC,
  REGION, LAST_CHANGED, LEID, EUID, NOTES, TAGS``; the unsubscribed file adds UNSUB_TIME
  (with UNSUB_CAMPAIGN_TITLE, UNSUB_REASON...), the cleaned file CLEAN_TIME. Times are
  "YYYY-MM-DD HH:MM:SS" in UTC; TAGS is a quoted, comma-separated list (``"a","b"``).
  OPTIN_*/CONFIRM_* as described at support.mailigen.com/ip-and-time-fields.
- Substack (email_list.<publication>.csv in the export zip, as read by Ghost's migrator
  TryGhost/migrate packages/mg-substack): ``email, active_subscription, expiry, plan,
  email_disabled, created_at, first_payment_at`` (older exports: a `name` column, no
  `email_disabled`). email_disabled=true: the reader gets no mail.
- listmonk (cmd/subscribers.go, "export"): ``uuid, email, name, attributes, status,
  created_at, updated_at``; attributes is a JSON object, status enabled, disabled or
  blocklisted (blocklisted: never mailed, on any list); times are Go's Time.String().
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Callable

from mailer.errors import InputError

FORMATS = ("mailchimp", "substack", "listmonk")
# (scope, suppression reason) of a row another tool says must not be mailed; scope "list" is
# the imported list, "*" every list
UNSUBSCRIBED = ("list", "unsubscribed")
CLEANED = ("*", "bounced")
BLOCKLISTED = ("*", "unsubscribed")

_MAILCHIMP_MARKS = {"optin_time", "optin_ip", "confirm_time", "confirm_ip", "member_rating", "leid", "euid",
                    "last_changed", "unsub_time", "clean_time"}
_REQUIRED = {"mailchimp": ("email address",), "substack": ("email", "active_subscription"),
             "listmonk": ("email", "status")}
_SHOWN = {"email address": "Email Address", "active_subscription": "active_subscription", "email": "email",
          "status": "status"}
_DROPPED = {"mailchimp": {"leid", "euid"}, "substack": set(), "listmonk": {"uuid", "updated_at"}}
_TIME = re.compile(r"(\d{4}-\d\d-\d\d)[ T](\d\d:\d\d(?::\d\d)?)(?:\.\d+)?\s*(Z|[+-]\d\d:?\d\d)?(?:\s+[A-Z]{2,5})?")
_DATE = re.compile(r"\d{4}-\d\d-\d\d")


@dataclass(slots=True)
class Mapped:
    """What a row of an export adds to a plain row: consent evidence, a suppression, tags tidied."""

    name: str
    attributes: dict[str, str]
    tags: str                                  # as the `tags` column of a plain import: "a,b"
    consent: tuple[str, str, str, str]   # opt-in at, IP, confirmed at, IP ("" when not given); times: utc_text
    suppress: tuple[str, str] | None           # (scope, reason) or None
    normalised_tags: int                       # tags whose spaces or capitals were changed


def detect(path: Path, header_line: str, forced: str | None) -> "Mapper | None":
    """The mapper for this header, or None for a plain CSV. InputError for a known export missing a column."""
    names = [n.strip().lower() for n in next(csv.reader([header_line]), [])]
    kind = forced
    if kind is None:
        present = set(names)
        if len(present & _MAILCHIMP_MARKS) >= 2:
            kind = "mailchimp"
        elif present & {"active_subscription", "email_disabled"}:
            kind = "substack"
        elif {"uuid", "attributes", "status"} <= present:
            kind = "listmonk"
        else:
            return None
    for column in _REQUIRED[kind]:
        if column not in names:
            raise InputError(f"{path}: line 1: looks like a {kind.capitalize()} export but has no "
                             f"{_SHOWN[column]!r} column")
    return Mapper(kind, set(names))


def utc_text(when: datetime) -> str:
    """A naive UTC time as SQLAlchemy's DateTime stores it in SQLite ("2021-03-04 10:11:12.000000").

    The reader (a second process for a large file) formats the times, so that the writer only
    passes them on (mailer.people.bulksql.BulkSQL.utc_text_value).
    """
    return when.isoformat(" ", "microseconds")


def _time(column: str, value: str) -> str:
    """A time as the tools write it, as utc_text; "" for an empty value; InputError otherwise."""
    value = value.strip()
    if not value:
        return ""
    if len(value) == 19 and value[10] == " ":    # Mailchimp's, already UTC: checked, not reformatted
        try:
            datetime.fromisoformat(value)
            return value + ".000000"
        except ValueError:
            pass
    m = _TIME.fullmatch(value)
    if m is None and not _DATE.fullmatch(value):
        raise InputError(f"column {column!r}: not a date and time: {value[:40]!r}")
    day, clock, zone = m.groups() if m is not None else (value, "00:00:00", None)
    try:
        when = datetime.fromisoformat(f"{day}T{clock}")
    except ValueError:
        raise InputError(f"column {column!r}: not a date and time: {value[:40]!r}") from None
    if zone and zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        digits = zone[1:].replace(":", "")
        when -= sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
    return utc_text(when)


def _ip(column: str, value: str) -> str:
    value = value.strip()
    if len(value) > 64 or (value and not re.fullmatch(r"[0-9A-Fa-f:.]+", value)):
        raise InputError(f"column {column!r}: not an IP address: {value[:40]!r}")
    return value


def _true(value: str) -> bool:
    return value.strip().lower() in ("true", "t", "1", "yes")


def _tag(raw: str) -> str:
    """A tag from another tool: spaces become '-', capitals lower-case ("Tenants Union" -> tenants-union)."""
    return re.sub(r"\s+", "-", raw.strip()).lower()


class Mapper:
    """Maps the attribute columns of one export's rows (lower-cased names) onto a plain import's."""

    def __init__(self, kind: str, names: set[str]) -> None:
        self.kind = kind
        self.unsubscribed = kind == "mailchimp" and "unsub_time" in names
        self.cleaned = kind == "mailchimp" and "clean_time" in names
        self._map: Callable[[str, dict[str, str]], Mapped] = getattr(self, f"_{kind}")

    def apply(self, name: str, attributes: dict[str, str]) -> Mapped:
        """The row mapped; InputError naming the column for a value that cannot be read."""
        attributes = {k: v for k, v in attributes.items() if k not in _DROPPED[self.kind]}
        return self._map(name, attributes)

    def _mailchimp(self, name: str, attrs: dict[str, str]) -> Mapped:
        first = attrs.pop("first name", "") or attrs.pop("fname", "")
        last = attrs.pop("last name", "") or attrs.pop("lname", "")
        attrs.pop("fname", None), attrs.pop("lname", None)
        name = name or " ".join(p for p in (first.strip(), last.strip()) if p)
        confirmed_at = _time("CONFIRM_TIME", attrs.pop("confirm_time", ""))
        # contacts added by an admin have no OPTIN_TIME: their consent dates from the confirmation
        consent = (_time("OPTIN_TIME", attrs.pop("optin_time", "")) or confirmed_at,
                   _ip("OPTIN_IP", attrs.pop("optin_ip", "")), confirmed_at, _ip("CONFIRM_IP", attrs.pop("confirm_ip", "")))
        raw_tags = attrs.pop("tags", "")
        tags: list[str] = []
        normalised = 0
        for raw in next(csv.reader([raw_tags], skipinitialspace=True), []) if raw_tags.strip() else []:
            if not raw.strip():
                continue
            tag = _tag(raw)
            normalised += tag != raw.strip()
            tags.append(tag)
        suppress = CLEANED if self.cleaned else UNSUBSCRIBED if self.unsubscribed else None
        return Mapped(name, attrs, ",".join(tags), consent, suppress, normalised)

    def _substack(self, name: str, attrs: dict[str, str]) -> Mapped:
        at = _time("created_at", attrs.pop("created_at", ""))
        disabled = _true(attrs.pop("email_disabled", ""))
        return Mapped(name, attrs, attrs.pop("tags", ""), (at, "", "", ""),
                      UNSUBSCRIBED if disabled else None, 0)

    def _listmonk(self, name: str, attrs: dict[str, str]) -> Mapped:
        status = attrs.pop("status", "").strip().lower()
        if status not in ("enabled", "disabled", "blocklisted", "blacklisted"):
            raise InputError(f"column 'status': {status[:40]!r} is not enabled, disabled or blocklisted")
        at = _time("created_at", attrs.pop("created_at", ""))
        extra = attrs.pop("attributes", "").strip()
        if extra:
            try:
                values = json.loads(extra)
            except ValueError:
                raise InputError("column 'attributes': not a JSON object") from None
            if not isinstance(values, dict):
                raise InputError("column 'attributes': not a JSON object")
            for key, value in values.items():
                key = str(key).strip().lower()
                if key and key not in attrs and value not in (None, ""):
                    attrs[key] = value if isinstance(value, str) else json.dumps(value)
        suppress = BLOCKLISTED if status in ("blocklisted", "blacklisted") else None
        return Mapped(name, attrs, attrs.pop("tags", ""), (at, "", "", ""), suppress, 0)
