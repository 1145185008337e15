"""Segments: a small, safe filter language over subscribers, and the audience filter of a send.

    tag = eastfield and not list = press
    attr.branch = "Mill Lane" or (status = pending and created >= 2026-11-01)
    email contains "@riverside.example" and confirmed < 2026-06-01

Fields: `tag`, `list` (confirmed on that list), `status` (a subscription with that status), `email`,
`name`, `created` (the subscriber), `confirmed` (a subscription confirmed then), `attr.NAME` (an
attribute: compared as text, or as a number when the value is one). Operators: `=`, `!=`, `<`, `<=`,
`>`, `>=`, `contains`; `and`, `or`, `not`, parentheses. An expression is parsed into a tree and
compiled to SQLAlchemy expressions with bound values: nothing of it is ever pasted into SQL. A
mistake is one InputError naming the position. A send's audience (tags, segment, exclusions) is
people.tagging.Audience.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any

from sqlalchemy import ColumnElement, Float, and_, case, cast, exists, func, not_, or_, select
from sqlalchemy.orm import aliased

from mailer.errors import InputError
from mailer.models import MailingList, Subscriber, SubscriberTag, Subscription, SubscriptionStatus

MAX_LENGTH = 2000
TAG = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")
FIELDS = ("tag", "list", "status", "email", "name", "created", "confirmed")
OPS = ("=", "!=", "<=", ">=", "<", ">", "contains")
_TOKEN = re.compile(r"""\s*(?:(?P<str>"(?:[^"\\]|\\.)*")|(?P<op>!=|<=|>=|=|<|>|\(|\))|(?P<word>[A-Za-z0-9_.@:+-]+))""")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


@dataclass(frozen=True)
class Test:
    field: str
    op: str
    value: str
    quoted: bool


@dataclass(frozen=True)
class Node:
    kind: str                 # "and", "or", "not"
    parts: tuple[Any, ...]


def check_tag(raw: str, where: str = "tag") -> str:
    """A tag as stored: lower-case letters, digits, '-', '_', '.', at most 64; InputError otherwise."""
    tag = raw.strip().lower()
    if not TAG.fullmatch(tag):
        shown = raw if len(raw) <= 40 else raw[:40] + "..."
        raise InputError(f"{where} {shown!r}: use letters, digits, '-', '_' or '.', no spaces, at most 64 characters")
    return tag


def parse(text: str) -> Any:
    """The tree of a segment expression; InputError naming the position of the first mistake."""
    if len(text) > MAX_LENGTH:
        raise InputError(f"segment expression: {len(text):,} characters; keep it under {MAX_LENGTH}")
    tokens = _tokens(text)
    parser = _Parser(tokens, text)
    tree = parser.expr()
    if parser.i < len(tokens):
        parser.fail("expected 'and', 'or' or the end")
    return tree


def condition(text: str) -> ColumnElement[bool]:
    """The SQL condition on Subscriber (correlated) that a segment expression means."""
    return _compile(parse(text))


def _tokens(text: str) -> list[tuple[str, str, int, bool]]:
    out: list[tuple[str, str, int, bool]] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _TOKEN.match(text, pos)
        if m is None:
            at = pos + len(text[pos:]) - len(text[pos:].lstrip())
            raise InputError(f"segment expression: position {at + 1}: unexpected {text[at]!r}")
        start = m.start(m.lastgroup or "word")
        if m.group("str") is not None:
            value = re.sub(r"\\(.)", r"\1", m.group("str")[1:-1])
            out.append(("value", value, start, True))
        elif m.group("op") is not None:
            out.append(("op", m.group("op"), start, False))
        else:
            word = m.group("word")
            kind = "kw" if word.lower() in ("and", "or", "not", "contains") else "word"
            out.append((kind, word.lower() if kind == "kw" else word, start, False))
        pos = m.end()
    return out


class _Parser:
    def __init__(self, tokens: list[tuple[str, str, int, bool]], text: str) -> None:
        self.tokens, self.text, self.i = tokens, text, 0

    def fail(self, what: str) -> None:
        if self.i < len(self.tokens):
            kind, value, pos, _ = self.tokens[self.i]
            raise InputError(f"segment expression: position {pos + 1}: {what}, got {value!r}")
        raise InputError(f"segment expression: at the end: {what}")

    def peek(self, kind: str, value: str | None = None) -> bool:
        if self.i >= len(self.tokens):
            return False
        k, v, _, _ = self.tokens[self.i]
        return k == kind and (value is None or v == value)

    def expr(self) -> Any:
        parts = [self.term()]
        while self.peek("kw", "or"):
            self.i += 1
            parts.append(self.term())
        return parts[0] if len(parts) == 1 else Node("or", tuple(parts))

    def term(self) -> Any:
        parts = [self.factor()]
        while self.peek("kw", "and"):
            self.i += 1
            parts.append(self.factor())
        return parts[0] if len(parts) == 1 else Node("and", tuple(parts))

    def factor(self) -> Any:
        if self.peek("kw", "not"):
            self.i += 1
            return Node("not", (self.factor(),))
        if self.peek("op", "("):
            self.i += 1
            inner = self.expr()
            if not self.peek("op", ")"):
                self.fail("expected ')'")
            self.i += 1
            return inner
        return self.test()

    def test(self) -> Test:
        if not self.peek("word"):
            self.fail("expected a field (" + ", ".join(FIELDS) + ", attr.NAME)")
        field = self.tokens[self.i][1].lower()
        if field not in FIELDS and not re.fullmatch(r"attr\.[a-z_][a-z0-9_-]{0,63}", field):
            self.fail("unknown field; use " + ", ".join(FIELDS) + " or attr.NAME")
        self.i += 1
        if not (self.peek("op") and self.tokens[self.i][1] in OPS) and not self.peek("kw", "contains"):
            self.fail(f"expected an operator after {field} (" + " ".join(OPS) + ")")
        op, op_pos = self.tokens[self.i][1], self.tokens[self.i][2]
        if field in ("tag", "list", "status") and op not in ("=", "!="):
            raise InputError(f"segment expression: position {op_pos + 1}: {field} takes = or !=, not {op}")
        self.i += 1
        if not (self.peek("value") or self.peek("word")):
            self.fail(f"expected a value after {field} {op}")
        _, value, pos, quoted = self.tokens[self.i]
        test = Test(field, op, value, quoted)
        try:
            _check(test)
        except InputError as exc:
            raise InputError(f"segment expression: position {pos + 1}: {exc}") from None
        self.i += 1
        return test


def _check(t: Test) -> None:
    if t.field in ("tag", "list", "status") and t.op not in ("=", "!="):
        raise InputError(f"{t.field} takes = or !=, not {t.op}")
    if t.field == "tag":
        check_tag(t.value)
    if t.field == "status" and t.value not in {s.value for s in SubscriptionStatus}:
        raise InputError(f"status is one of {', '.join(s.value for s in SubscriptionStatus)}, not {t.value!r}")
    if t.field in ("created", "confirmed"):
        if t.op == "contains":
            raise InputError(f"{t.field} is a date: use = != < <= > >=")
        _day(t.value)
    if t.field in ("email", "name") and t.op not in ("=", "!=", "contains"):
        raise InputError(f"{t.field} takes = != or contains")


def _day(value: str) -> datetime:
    try:
        if not _DATE.fullmatch(value):
            raise ValueError
        return datetime.combine(date.fromisoformat(value), datetime.min.time(), tzinfo=timezone.utc)
    except ValueError:
        raise InputError(f"{value!r} is not a date (YYYY-MM-DD)") from None


def _compile(node: Any) -> ColumnElement[bool]:
    if isinstance(node, Node):
        parts = [_compile(p) for p in node.parts]
        if node.kind == "not":
            return not_(parts[0])
        return and_(*parts) if node.kind == "and" else or_(*parts)
    return _test(node)


def _test(t: Test) -> ColumnElement[bool]:
    negate = t.op == "!="
    if t.field == "tag":
        clause: ColumnElement[bool] = exists().where(SubscriberTag.subscriber_id == Subscriber.id,
                                                     SubscriberTag.tag == t.value.lower())
    elif t.field == "list":
        other = aliased(Subscription)    # never the outer query's subscription row (a send's audience)
        clause = exists().where(other.subscriber_id == Subscriber.id,
                                other.status == SubscriptionStatus.CONFIRMED,
                                other.list_id == select(MailingList.id)
                                .where(MailingList.slug == t.value).scalar_subquery())
    elif t.field == "status":
        other = aliased(Subscription)
        clause = exists().where(other.subscriber_id == Subscriber.id, other.status == SubscriptionStatus(t.value))
    elif t.field in ("created", "confirmed"):
        return _date(t)
    elif t.field in ("email", "name"):
        column = Subscriber.email_key if t.field == "email" else func.lower(Subscriber.name)
        value = t.value.casefold()
        clause = column.contains(value, autoescape=True) if t.op == "contains" else column == value
    else:
        return _attribute(t)
    return not_(clause) if negate else clause


def _date(t: Test) -> ColumnElement[bool]:
    day = _day(t.value)
    ops = {"<": lambda c: c < day, "<=": lambda c: c < day + timedelta(days=1), ">": lambda c: c >= day + timedelta(days=1),
           ">=": lambda c: c >= day, "=": lambda c: and_(c >= day, c < day + timedelta(days=1)),
           "!=": lambda c: or_(c < day, c >= day + timedelta(days=1))}
    if t.field == "created":
        return ops[t.op](Subscriber.created_at)
    other = aliased(Subscription)
    return exists().where(other.subscriber_id == Subscriber.id, other.confirmed_at.is_not(None),
                          ops[t.op](other.confirmed_at))


def _attribute(t: Test) -> ColumnElement[bool]:
    element = Subscriber.attributes[t.field[len("attr."):]]
    text = element.as_string()
    if t.op == "contains":
        return func.coalesce(text, "").contains(t.value, autoescape=True)
    if t.op in ("=", "!="):
        same = text == t.value
        return same if t.op == "=" else or_(text.is_(None), text != t.value)
    if _NUMBER.fullmatch(t.value) and not t.quoted:
        # only values that are numbers (digits, at most one '.') are compared as numbers; the
        # others are NULL, not selected (SQLite would read "x" as 0, PostgreSQL would fail)
        digits = func.replace(text, ".", "")
        numeric = and_(text != "", text != ".", func.ltrim(digits, "0123456789") == "",
                       func.length(text) - func.length(digits) <= 1)
        number = case((numeric, cast(text, Float)), else_=None)
        return {"<": number < float(t.value), "<=": number <= float(t.value),
                ">": number > float(t.value), ">=": number >= float(t.value)}[t.op]
    return {"<": text < t.value, "<=": text <= t.value, ">": text > t.value, ">=": text >= t.value}[t.op]


def confirmed_on(slug: str) -> ColumnElement[bool]:
    """The condition `list = SLUG`: a confirmed subscription on that list."""
    return _test(Test("list", "=", slug, False))
