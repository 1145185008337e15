"""Tags on subscribers and saved segments: what `subscribers tag`, `mailer segments` and the
send options `--tag`, `--segment`, `--exclude-list`, `--exclude-segment` do to the store.

The language itself is people.segments; this module keeps segments by name and turns a
command's options into the Audience a send freezes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from sqlalchemy import ColumnElement, and_, delete, exists, func, not_, select, true, update
from sqlalchemy.exc import IntegrityError

from mailer.db import Database
from mailer.errors import InputError
from mailer.models import Segment, Subscriber, SubscriberTag, utcnow
from mailer.people.bulksql import BulkSQL
from mailer.people.lists import get_list
from mailer.people.segments import check_tag, condition, confirmed_on
from mailer.people.subscriptions import find_subscriber


class SegmentExists(InputError):
    """A segment by that name is saved already."""


class NoSuchSegment(InputError):
    """No segment by that name."""


@dataclass(frozen=True)
class SegmentView:
    name: str
    expression: str
    count: int


def tag(db: Database, email: str, tags: Sequence[str]) -> int:
    """Add *tags* to the subscriber with *email*; how many were new to them."""
    wanted = list(dict.fromkeys(check_tag(t) for t in tags))
    with db.session() as session:
        subscriber = _subscriber(session, email)
        have = set(session.scalars(select(SubscriberTag.tag).where(SubscriberTag.subscriber_id == subscriber.id)))
        new = [t for t in wanted if t not in have]
        for t in new:
            session.add(SubscriberTag(subscriber_id=subscriber.id, tag=t))
    return len(new)


def untag(db: Database, email: str, tags: Sequence[str]) -> int:
    """Remove *tags* from the subscriber with *email*; how many they had."""
    wanted = [check_tag(t) for t in tags]
    with db.session() as session:
        subscriber = _subscriber(session, email)
        result = session.execute(delete(SubscriberTag).where(SubscriberTag.subscriber_id == subscriber.id,
                                                             SubscriberTag.tag.in_(wanted)))
        return result.rowcount or 0


def tag_many(conn, pairs: Sequence[tuple[int, str]]) -> None:  # type: ignore[no-untyped-def]
    """Tags of an import batch, (subscriber id, tag), in the caller's transaction; existing ones stay."""
    if not pairs:
        return
    sql = BulkSQL(conn)   # plain executemany: per-row bind processing cost more than the inserts
    now = sql.ts(utcnow())
    sql.insert(SubscriberTag.__table__, ["subscriber_id", "tag", "created_at"],
               [(sid, t, now) for sid, t in sorted(dict.fromkeys(pairs))], conflict="subscriber_id, tag")


def tags_of(db: Database, email: str) -> list[str]:
    with db.session() as session:
        subscriber = _subscriber(session, email)
        return list(session.scalars(select(SubscriberTag.tag).where(SubscriberTag.subscriber_id == subscriber.id)
                                    .order_by(SubscriberTag.tag)))


def add_segment(db: Database, name: str, expression: str) -> int:
    """Save *expression* as segment *name* (checked first); how many subscribers it selects now."""
    name = check_tag(name, "segment name")
    count = count_of(db, expression)
    try:
        with db.session() as session:
            session.add(Segment(name=name, expression=" ".join(expression.split())))
    except IntegrityError:
        raise SegmentExists(f"segment {name!r} exists: `mailer segments edit {name}` changes it") from None
    return count


def edit_segment(db: Database, name: str, expression: str) -> int:
    """Replace segment *name*'s expression (checked first); how many subscribers it selects now.
    Sends and schedules made with it keep the expression they were made with."""
    count = count_of(db, expression)
    with db.session() as session:
        if not session.execute(update(Segment).where(Segment.name == name.lower())
                               .values(expression=" ".join(expression.split()))).rowcount:
            raise NoSuchSegment(f"no segment {name!r} (see `mailer segments`)")
    return count


def segment_expression(db: Database, name: str) -> str:
    """Segment *name*'s expression; NoSuchSegment when there is none."""
    with db.session() as session:
        expression = session.scalar(select(Segment.expression).where(Segment.name == name.lower()))
    if expression is None:
        raise NoSuchSegment(f"no segment {name!r} (see `mailer segments`)")
    return expression


def remove_segment(db: Database, name: str) -> None:
    with db.session() as session:
        if not session.execute(delete(Segment).where(Segment.name == name.lower())).rowcount:
            raise NoSuchSegment(f"no segment {name!r} (see `mailer segments`)")


def saved_segments(db: Database) -> list[tuple[str, str]]:
    """Every saved segment's (name, expression), by name."""
    with db.session() as session:
        return [(name, expr) for name, expr in session.execute(select(Segment.name, Segment.expression)
                                                                 .order_by(Segment.name))]


def segments(db: Database) -> list[SegmentView]:
    return [SegmentView(name, expr, count_of(db, expr)) for name, expr in saved_segments(db)]


def segment_names(db: Database) -> list[str]:
    """The saved segments' names, without counting them (for choosing one)."""
    with db.session() as session:
        return list(session.scalars(select(Segment.name).order_by(Segment.name)))


def count_of(db: Database, expression: str) -> int:
    """Subscribers (any status) an expression selects; InputError when it does not parse."""
    clause = condition(expression)
    with db.session() as session:
        return session.scalar(select(func.count()).select_from(Subscriber).where(clause)) or 0


def sample_of(db: Database, expression: str, limit: int = 10) -> list[str]:
    clause = condition(expression)
    with db.session() as session:
        return list(session.scalars(select(Subscriber.email).where(clause).order_by(Subscriber.id).limit(limit)))


def audience(db: Database, *, tags: Sequence[str] = (), segment: str | None = None,
             exclude_lists: Sequence[str] = (), exclude_segment: str | None = None,
             fields: tuple[str, str] = ("--segment", "--exclude-segment")) -> Audience | None:
    """The Audience a send's options ask for (None: the lists' confirmed subscribers, all of them).
    Segments are stored by their expression, so editing a segment later changes no send. An
    unknown segment's message names *fields* (the CLI's options, or the desk's form fields)."""
    if not (tags or segment or exclude_lists or exclude_segment):
        return None
    with db.session() as session:
        for slug in exclude_lists:
            get_list(session, slug)
        return Audience(tuple(dict.fromkeys(check_tag(t) for t in tags)), _expression(session, segment, fields[0]),
                        tuple(dict.fromkeys(exclude_lists)), _expression(session, exclude_segment, fields[1]))


def _expression(session, name: str | None, option: str) -> str:  # type: ignore[no-untyped-def]
    if not name:
        return ""
    expression = session.scalar(select(Segment.expression).where(Segment.name == name.lower()))
    if expression is None:
        raise InputError(f"{option} {name}: no such segment (see `mailer segments`)")
    return expression


def _subscriber(session, email: str) -> Subscriber:  # type: ignore[no-untyped-def]
    subscriber = find_subscriber(session, email)
    if subscriber is None:
        raise InputError(f"{email}: no such subscriber")
    return subscriber


@dataclass(frozen=True)
class Audience:
    """Who of a send's lists get it: any of *tags*, in *segment*, and in no excluded list or segment.
    Stored on the send as JSON (segments by their expression, so a later edit changes no send)."""

    tags: tuple[str, ...] = ()
    segment: str = ""
    exclude_lists: tuple[str, ...] = ()
    exclude_segment: str = ""

    @classmethod
    def of(cls, data: dict | None) -> Audience:
        data = data or {}
        return cls(tuple(data.get("tags", ())), data.get("segment", ""), tuple(data.get("exclude_lists", ())),
                   data.get("exclude_segment", ""))

    def as_json(self) -> dict:
        out: dict[str, Any] = {}
        if self.tags:
            out["tags"] = list(self.tags)
        if self.segment:
            out["segment"] = self.segment
        if self.exclude_lists:
            out["exclude_lists"] = list(self.exclude_lists)
        if self.exclude_segment:
            out["exclude_segment"] = self.exclude_segment
        return out

    def condition(self) -> ColumnElement[bool]:
        """The condition on Subscriber (correlated) this audience adds to a list's confirmed subscribers."""
        parts: list[ColumnElement[bool]] = []
        if self.tags:
            parts.append(exists().where(SubscriberTag.subscriber_id == Subscriber.id,
                                        SubscriberTag.tag.in_(list(self.tags))))
        if self.segment:
            parts.append(condition(self.segment))
        for slug in self.exclude_lists:
            parts.append(not_(confirmed_on(slug)))
        if self.exclude_segment:
            parts.append(not_(condition(self.exclude_segment)))
        return and_(*parts) if parts else true()

    def describe(self) -> str:
        bits = [f"tagged {' or '.join(self.tags)}"] if self.tags else []
        bits += [f"in segment ({self.segment})"] if self.segment else []
        bits += [f"not on {', '.join(self.exclude_lists)}"] if self.exclude_lists else []
        bits += [f"not in ({self.exclude_segment})"] if self.exclude_segment else []
        return "; ".join(bits)

