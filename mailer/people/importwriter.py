"""The import's writer: one batch of valid rows applied in one transaction of bulk SQL.

What happens to each row's subscription is `rules.decide`'s, the rule the one-person
`subscribe` applies too: the decision is taken once per current status (the batch
shares the list, the consent flag and the source), then applied in bulk: new
subscribers' rows are copied with INSERT ... SELECT over their contiguous ids,
the rest inserted or updated with executemany. Suppressed rows are left alone
(STANDARDS B8) before any subscriber is written for them.

Rows of another tool's export that it says must not be mailed (Mailchimp's unsubscribed
and cleaned files, listmonk's blocklisted, Substack's email_disabled) become suppressions,
in bulk, and end any subscription the address has in their scope; they never subscribe.
A row carrying the export's opt-in and confirmation times and IPs gets them in its
consent row (executemany instead of the INSERT ... SELECT copy).
"""

from __future__ import annotations

import json
from contextlib import nullcontext
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection

from mailer.models import AuditEvent, Consent, ConsentSource, MailingList, Reason, Subscriber, Subscription, \
    Suppression, SubscriptionStatus, link_secrets, sorted_uids, utcnow
from mailer.people.bulksql import BulkSQL
from mailer.people.importreader import Batch
from mailer.people.rules import Decision, Outcome, decide
from mailer.people.tagging import tag_many
from mailer.people.subscriptions import GLOBAL

if TYPE_CHECKING:
    from mailer.people.importing import ImportReport

_ENDED_BY = {"unsubscribed": Reason.USER, "bounced": Reason.BOUNCE}   # suppression -> subscription reason

_COUNTER = {  # which ImportReport field counts a row with this outcome
    Outcome.CREATED_PENDING: "subscribed", Outcome.CREATED_CONFIRMED: "subscribed",
    Outcome.NOW_PENDING: "subscribed", Outcome.NOW_CONFIRMED: "confirmed",
    Outcome.ALREADY_PENDING: "already_subscribed", Outcome.ALREADY_CONFIRMED: "already_subscribed",
    Outcome.KEPT_UNSUBSCRIBED: "kept_unsubscribed", Outcome.SUPPRESSED: "suppressed",
}


def unit(conn: Connection, dry_run: bool) -> Any:
    """A transaction per unit of work; in a dry run, all of it is in one outer transaction rolled back."""
    return nullcontext() if dry_run else conn.begin()


class BatchWriter:
    """Applies batches of valid rows to one list, one transaction each."""

    def __init__(self, conn: Connection, mlist: MailingList, confirmed: bool, start_id: int,
                 report: ImportReport, form_id: str) -> None:
        self.conn, self.mlist = conn, mlist
        self.start_id, self.report, self.form_id = start_id, report, form_id
        self.sql = BulkSQL(conn)
        self.rules: dict[SubscriptionStatus | None, Decision] = {
            status: decide(status, confirmed=confirmed, suppressed=False, source=ConsentSource.IMPORT)
            for status in (None, *SubscriptionStatus)}
        self.when_suppressed = decide(None, confirmed=confirmed, suppressed=True, source=ConsentSource.IMPORT)
        # subscribers that were there before the import and that a row of it named already
        self._seen = bytearray(start_id // 8 + 1)

    def apply(self, batch: Batch) -> None:
        with unit(self.conn, self.report.dry_run):
            self._apply(batch)

    def _apply(self, batch: Batch) -> None:
        report = self.report
        # key -> (line, email, key, name, attributes, hash, tags, consent, suppress)
        rows = {row[2]: row for row in batch.rows}
        report.tags_normalised += batch.tags_normalised
        stops = {key: rows.pop(key) for key in [key for key, row in rows.items() if row[8]]}
        if stops:
            self._add_suppressions(stops, (batch.first_line, batch.last_line))
        if self.when_suppressed.outcome is Outcome.SUPPRESSED:
            for key in self._suppressed(batch):
                if rows.pop(key, None) is not None:
                    report.suppressed += 1
        if not rows:
            return
        now = self.sql.ts(utcnow())
        ids = self._merge_existing(rows, now)
        existing = [ids[key] for key in rows if key in ids]
        new = [row for key, row in rows.items() if key not in ids]   # still in key order
        span = self._insert_new(new, now, ids) if new else None
        self._subscribe(rows, ids, existing, span, now, (batch.first_line, batch.last_line))
        tag_many(self.conn, [(ids[key], tag) for key, row in rows.items() if row[6] for tag in row[6].split(",")])

    def _add_suppressions(self, rows: dict[str, tuple[Any, ...]], lines: tuple[int, int]) -> None:
        """Suppress the rows another tool's export says must not be mailed, ending their subscriptions."""
        now, ph, report = self.sql.ts(utcnow()), self.sql.ph, self.report
        by_scope: dict[tuple[str, str], list[tuple[Any, ...]]] = {}
        for row in rows.values():
            by_scope.setdefault(row[8], []).append(row)
        ended = 0
        for (scope, reason), group in sorted(by_scope.items()):
            where = GLOBAL if scope == GLOBAL else self.mlist.slug
            report.suppressions_added += self.sql.insert(
                Suppression.__table__, ["email_hash", "email", "scope", "reason", "detail", "created_at"],
                [(row[5], row[1], where, reason, self.form_id, now) for row in group], conflict="email_hash, scope")
            on_list = "" if where == GLOBAL else f"list_id = {ph} AND "
            ended += self.conn.exec_driver_sql(
                f"UPDATE subscription SET status = {ph}, reason = {ph}, status_at = {ph}, unsubscribed_at = {ph} "
                f"WHERE {on_list}status <> {ph} AND subscriber_id IN (SELECT id FROM subscriber WHERE email_key "
                f"IN ({self.sql.placeholders(len(group))}))",
                (SubscriptionStatus.UNSUBSCRIBED.value, _ENDED_BY[reason].value, now, now,
                 *(() if where == GLOBAL else (self.mlist.id,)), SubscriptionStatus.UNSUBSCRIBED.value,
                 *(row[2] for row in group))).rowcount
        report.export_suppressed += len(rows)
        report.subscriptions_ended += ended
        self.sql.insert(AuditEvent.__table__,
                        ["at", "subscriber_id", "list_id", "action", "old_status", "new_status", "reason", "actor",
                         "detail"],
                        [(now, None, self.mlist.id, "import-suppress", "", SubscriptionStatus.UNSUBSCRIBED.value,
                          "", "import", f"{self.form_id} lines {lines[0]}-{lines[1]}: {len(rows)} suppressed "
                                        f"as the export says, {ended} subscriptions ended")])

    def _suppressed(self, batch: Batch) -> list[str]:
        """Keys of the batch suppressed for this list or everywhere (STANDARDS B8).

        A suppression list smaller than the batch is read whole (one index scan); a bigger
        one is probed with the batch's hashes.
        """
        hashes = {row[5]: row[2] for row in batch.rows}
        scopes = (GLOBAL, self.mlist.slug)
        ph = self.sql.ph
        found = self.conn.exec_driver_sql(
            f"SELECT email_hash FROM suppression WHERE scope IN ({ph}, {ph}) LIMIT {ph}",
            (*scopes, len(hashes) + 1)).all()
        if len(found) > len(hashes):
            found = self.sql.select_in(
                "SELECT email_hash FROM suppression WHERE scope IN ({ph}, {ph}) AND email_hash IN ({in})",
                list(hashes), *scopes)
        return [hashes[digest] for (digest,) in found if digest in hashes]

    def _insert_new(self, new: list[tuple[Any, ...]], now: Any, ids: dict[str, int]) -> range | None:
        """Insert the new subscribers and add their ids to *ids*; their id range when it is contiguous.

        On SQLite the batch's transaction holds the write lock from the first insert on, so
        when every row went in, they took the ids up to last_insert_rowid() in order.
        """
        inserted = self.sql.insert(
            Subscriber.__table__,
            ["uid", "link_secret", "email", "email_key", "name", "attributes", "created_at", "updated_at"],
            [(uid, secret, email, key, name, attributes, now, now)
             for uid, secret, (_, email, key, name, attributes, *_)
             in zip(sorted_uids(len(new)), link_secrets(len(new)), new)],
            conflict="email_key", json_cols=("attributes",))
        self.report.new_subscribers += inserted
        if self.sql.sqlite and inserted == len(new):
            last = self.conn.exec_driver_sql("SELECT last_insert_rowid()").scalar_one()
            span = range(last - len(new) + 1, last + 1)
            ids.update(zip((row[2] for row in new), span))
            return span
        for sid, key in self.sql.select_in("SELECT id, email_key FROM subscriber WHERE email_key IN ({in})",
                                           [row[2] for row in new]):
            ids[key] = sid
        return None

    def _merge_existing(self, rows: dict[str, tuple[Any, ...]], now: Any) -> dict[str, int]:
        """Merge names and attributes into the subscribers that exist; their ids by key.

        A row naming a subscriber that an earlier batch of this import wrote or named is a
        duplicate in the file: counted as such (once per row) and dropped from *rows*.
        """
        ids: dict[str, int] = {}
        changes, repeated = [], []
        for sid, key, name, attributes in self.sql.select_in(
                "SELECT id, email_key, name, attributes FROM subscriber WHERE email_key IN ({in})", list(rows)):
            ids[key] = sid
            if sid > self.start_id or self._seen[sid >> 3] & (1 << (sid & 7)):
                repeated.append(key)
            else:
                self._seen[sid >> 3] |= 1 << (sid & 7)
                self.report.existing_subscribers += 1
            _, _, _, row_name, row_attributes, *_ = rows[key]
            old = self.sql.json_load(attributes)
            merged = {**old, **json.loads(row_attributes)}
            new_name = name or row_name
            if merged != old or new_name != name:
                changes.append((new_name, json.dumps(merged), now, sid))
        for key in repeated:
            del rows[key]
        self.report.duplicates_in_file += len(repeated)
        if changes:
            ph = self.sql.ph
            self.conn.exec_driver_sql(f"UPDATE subscriber SET name = {ph}, attributes = {self.sql.json_ph()}, "
                                      f"updated_at = {ph} WHERE id = {ph}", changes)
            self.report.updated_subscribers += len(changes)
        return ids

    def _subscribe(self, rows: dict[str, tuple[Any, ...]], ids: dict[str, int], existing: list[int],
                   span: range | None, now: Any, lines: tuple[int, int]) -> None:
        """Apply the rules to each row's subscription; *existing* are the ids that were there before
        this batch, *span* the contiguous ids of the new ones (copied by INSERT ... SELECT)."""
        report, list_id, sql, ph = self.report, self.mlist.id, self.sql, self.sql.ph
        status = {sid: SubscriptionStatus(value) for sid, value in sql.select_in(
            "SELECT subscriber_id, status FROM subscription WHERE list_id = {ph} AND subscriber_id IN ({in})",
            existing, list_id)} if existing else {}
        fresh: list[tuple[int, tuple[Any, ...], Decision]] = []
        updated: list[tuple[int, tuple[Any, ...], Decision]] = []
        for key, row in rows.items():
            sid = ids[key]
            if span is not None and sid in span:
                continue
            current = status.get(sid)
            decision = self.rules[current]
            setattr(report, _COUNTER[decision.outcome], getattr(report, _COUNTER[decision.outcome]) + 1)
            if decision.changes:
                (fresh if current is None else updated).append((sid, row, decision))
        fresh.sort(key=lambda item: item[0])  # ids ascending: the indexes on subscriber_id append

        def subscription(d: Decision) -> tuple[Any, ...]:
            assert d.status is not None and d.reason is not None
            return (list_id, d.status.value, d.reason.value, now, now, now if d.confirmed else None)

        def consent(d: Decision) -> tuple[Any, ...]:
            return (list_id, now, ConsentSource.IMPORT.value, self.form_id, now if d.confirmed else None)

        source = ConsentSource.IMPORT.value

        def consent_row(sid: int, row: tuple[Any, ...], d: Decision) -> tuple[Any, ...]:
            """The consent row of one person, with the export's times and IPs when it has them."""
            at, ip, confirmed_at, confirmed_ip = row[7] or ("", "", "", "")
            confirmed = (sql.utc_text_value(confirmed_at) if confirmed_at else now) if d.confirmed else None
            return (sid, list_id, sql.utc_text_value(at) if at else now, source, self.form_id, confirmed,
                    row[1], ip, "", "", "", confirmed_ip if d.confirmed else "")

        consent_columns = ["subscriber_id", "list_id", "at", "source", "form_id", "confirmed_at", "email", "ip",
                           "user_agent", "text_version", "text", "confirmed_ip"]
        evidence = any(row[7] for row in rows.values())

        created = self.rules[None]
        if span is not None:
            setattr(report, _COUNTER[created.outcome], getattr(report, _COUNTER[created.outcome]) + len(span))
            self.conn.exec_driver_sql(
                "INSERT INTO subscription (subscriber_id, list_id, status, reason, created_at, status_at, "
                f"confirmed_at) SELECT id, {ph}, {ph}, {ph}, {ph}, {ph}, {ph} FROM subscriber "
                f"WHERE id BETWEEN {ph} AND {ph} ORDER BY id", (*subscription(created), span[0], span[-1]))
            if created.record_consent and evidence:   # each row its own times: one INSERT per row
                sql.insert(Consent.__table__, consent_columns,
                           [consent_row(sid, row, created) for sid, row in
                            sorted((ids[key], row) for key, row in rows.items() if ids[key] in span)])
            elif created.record_consent:
                self.conn.exec_driver_sql(
                    "INSERT INTO consent (subscriber_id, list_id, email, at, source, form_id, ip, user_agent, "
                    f"text_version, text, confirmed_at, confirmed_ip) SELECT id, {ph}, email, {ph}, {ph}, {ph}, "
                    f"'', '', '', '', {ph}, '' FROM subscriber WHERE id BETWEEN {ph} AND {ph} ORDER BY id",
                    (*consent(created), span[0], span[-1]))
        if fresh:
            sql.insert(Subscription.__table__,
                       ["subscriber_id", "list_id", "status", "reason", "created_at", "status_at", "confirmed_at"],
                       [(sid, *subscription(d)) for sid, _, d in fresh], conflict="subscriber_id, list_id")
        if updated:
            self.conn.exec_driver_sql(
                f"UPDATE subscription SET status = {ph}, reason = {ph}, status_at = {ph}, "
                f"confirmed_at = COALESCE({ph}, confirmed_at) WHERE list_id = {ph} AND subscriber_id = {ph}",
                [(d.status.value, d.reason.value, now, now if d.confirmed else None, list_id, sid)  # type: ignore[union-attr]
                 for sid, _, d in updated])
        changed = sorted(fresh + updated, key=lambda item: item[0])
        if any(d.record_consent for _, _, d in changed):
            sql.insert(Consent.__table__, consent_columns,
                       [consent_row(sid, row, d) for sid, row, d in changed if d.record_consent])
        subscribed = len(fresh) + (len(span) if span is not None else 0)
        if not subscribed and not updated:
            return
        detail = (f"{self.form_id} lines {lines[0]}-{lines[1]}: {subscribed} subscribed, "
                  f"{len(updated)} pending now confirmed")
        target = created.status.value if created.status else ""
        sql.insert(AuditEvent.__table__,
                   ["at", "subscriber_id", "list_id", "action", "old_status", "new_status", "reason", "actor",
                    "detail"],
                   [(now, None, list_id, "import", "", target, created.reason.value if created.reason else "",
                     "import", detail)])
