"""An issue's figures without tracking: per send and per list, what the ledger and the reports say.

Delivery counts come from the ledger; bounces, complaints and unsubscribes through the issue's
links from mailer.people.feedback. No pixel, no rewritten links: nothing here knows who opened
or clicked. `as_json` is the form the desk reads.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import select

from mailer.db import Database
from mailer.models import BounceKind, DeliveryStatus, MailingList, Send
from mailer.people import feedback
from mailer.sending import ledger

DELETED_LIST = "(deleted list)"


@dataclass
class ListFigures:
    """One list's share of a send."""

    list: str
    total: int = 0
    sent: int = 0
    deferred: int = 0
    failed: int = 0
    unknown: int = 0
    queued: int = 0
    skipped: int = 0
    bounced_hard: int = 0
    bounced_soft: int = 0
    complaints: int = 0
    unsubscribes: int = 0

    def add(self, other: ListFigures) -> None:
        for name, value in asdict(other).items():
            if isinstance(value, int):
                setattr(self, name, getattr(self, name) + value)


@dataclass
class SendFigures:
    """One send of the issue: its lists and their sum."""

    send_id: int
    uid: str
    status: str
    started_at: str | None
    finished_at: str | None
    lists: list[ListFigures] = field(default_factory=list)
    totals: ListFigures = field(default_factory=lambda: ListFigures("all"))


def _list_figures(name: str, statuses: dict[DeliveryStatus, int], bounces: dict[BounceKind, int],
                  unsubscribes: int) -> ListFigures:
    return ListFigures(
        list=name, total=sum(statuses.values()), sent=statuses[DeliveryStatus.SENT],
        deferred=statuses[DeliveryStatus.DEFERRED], failed=statuses[DeliveryStatus.FAILED],
        unknown=statuses[DeliveryStatus.UNKNOWN],
        queued=statuses[DeliveryStatus.QUEUED] + statuses[DeliveryStatus.SENDING],
        skipped=statuses[DeliveryStatus.SKIPPED], bounced_hard=bounces.get(BounceKind.HARD, 0),
        bounced_soft=bounces.get(BounceKind.SOFT, 0), complaints=bounces.get(BounceKind.COMPLAINT, 0),
        unsubscribes=unsubscribes)


def send_figures(db: Database, send: Send) -> SendFigures:
    """The figures of one send, a row per list its deliveries went to (in the send's list order)."""
    with db.session() as session:
        statuses = ledger.counts_per_list(session, send.id)
        bounces = feedback.bounces_per_list(session, send.id)
        unsubscribes = feedback.unsubscribes_per_list(session, send.uid)
        names = dict(session.execute(select(MailingList.id, MailingList.slug)
                                     .where(MailingList.id.in_([i for i in statuses if i is not None]))).all())
    order = {slug: n for n, slug in enumerate(send.list_slugs or [])}
    rows = [_list_figures(names.get(list_id, DELETED_LIST) if list_id is not None else DELETED_LIST,
                          counts, bounces.get(list_id, {}), unsubscribes.get(list_id, 0) if list_id else 0)
            for list_id, counts in statuses.items()]
    rows.sort(key=lambda row: (order.get(row.list, len(order)), row.list))
    result = SendFigures(send.id, send.uid, send.status.value,
                         send.started_at.isoformat() if send.started_at else None,
                         send.finished_at.isoformat() if send.finished_at else None, rows)
    for row in rows:
        result.totals.add(row)
    return result


def issue_figures(db: Database, issue_slug: str) -> list[SendFigures]:
    """Every send of the issue, oldest first; [] when it was never sent."""
    with db.session() as session:
        sends = list(session.scalars(select(Send).where(Send.issue_slug == issue_slug).order_by(Send.id)))
    return [send_figures(db, send) for send in sends]


def as_json(issue_slug: str, sends: list[SendFigures]) -> dict[str, Any]:
    """The report as plain data (for `mailer report --json` and the desk)."""
    return {"issue": issue_slug, "tracking": "none", "sends": [asdict(send) for send in sends]}
