"""Imports of other tools' exports (Mailchimp, Substack, listmonk), on SQLite and PostgreSQL.

The CSVs are written as those tools write them (columns: mailer/people/importformats.py).
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from mailer.cli import cli
from mailer.errors import InputError
from mailer.models import (Consent, MailingList, Subscriber, Subscription, SubscriptionStatus, Suppression,
                           SuppressionReason)
from mailer.people import tagging
from mailer.people.importing import import_csv
from mailer.people.lists import add_list
from tests.helpers import TEST_ENV

MC_HEADER = ("Email Address,First Name,Last Name,Branch,MEMBER_RATING,OPTIN_TIME,OPTIN_IP,CONFIRM_TIME,"
             "CONFIRM_IP,LATITUDE,LONGITUDE,GMTOFF,DSTOFF,TIMEZONE,CC,REGION,LAST_CHANGED,LEID,EUID,NOTES,TAGS")
MAILCHIMP = (MC_HEADER + "\n"
             "ana@example.org,Ana,Silva,Eastfield,2,2021-03-04 10:11:12,203.0.113.5,2021-03-04 10:15:00,"
             "203.0.113.6,,,,,,,,2022-01-01 00:00:00,123,abc,,\"\"\"Tenants Union\"\",\"\"volunteer\"\"\"\n"
             "bo@example.org,Bo,,,2,,,,,,,,,,,,,124,abd,,\n"
             "not-an-address,X,Y,,2,,,,,,,,,,,,,125,abe,,\n"
             "cy@example.org,Cy,Lee,,2,yesterday,,,,,,,,,,,,126,abf,,\n")
MC_UNSUB = ("Email Address,First Name,Last Name,MEMBER_RATING,OPTIN_TIME,OPTIN_IP,CONFIRM_TIME,CONFIRM_IP,"
            "UNSUB_TIME,UNSUB_CAMPAIGN_TITLE,UNSUB_CAMPAIGN_ID,UNSUB_REASON,UNSUB_REASON_OTHER,LEID,EUID,NOTES\n"
            "dee@example.org,Dee,,2,,,2020-01-01 00:00:00,,2023-05-05 12:00:00,Spring,c1,NORMAL,,1,a,\n"
            "ana@example.org,Ana,Silva,2,,,,,2023-05-06 12:00:00,,,NORMAL,,2,b,\n")
MC_CLEANED = ("Email Address,First Name,Last Name,MEMBER_RATING,OPTIN_TIME,OPTIN_IP,CONFIRM_TIME,CONFIRM_IP,"
              "CLEAN_TIME,CLEAN_CAMPAIGN_TITLE,CLEAN_CAMPAIGN_ID,LEID,EUID,NOTES\n"
              "gone@example.org,,,1,,,,,2023-06-01 08:00:00,Summer,c2,3,c,\n")
SUBSTACK = ("email,active_subscription,expiry,plan,email_disabled,created_at,first_payment_at\n"
            "pia@example.org,true,2027-01-01,yearly,false,2025-09-01T08:00:00.000Z,2025-09-01T08:00:00.000Z\n"
            "quin@example.org,false,,other,true,2025-10-12T12:30:00.000Z,\n"
            "ray@example.org,false,,other,false,12/10/2025,\n")
LISTMONK = ("uuid,email,name,attributes,status,created_at,updated_at\n"
            "0b1e9a36-0000-4000-8000-000000000001,lou@example.org,Lou Park,\"{\"\"city\"\": \"\"Leeds\"\", "
            "\"\"age\"\": 31}\",enabled,2024-01-02 10:11:12.123456 +0000 UTC,2024-02-02 10:11:12 +0000 UTC\n"
            "0b1e9a36-0000-4000-8000-000000000002,max@example.org,Max,{},blocklisted,"
            "2024-01-03 09:00:00 +0100 CET,2024-01-03 09:00:00 +0100 CET\n"
            "0b1e9a36-0000-4000-8000-000000000003,ned@example.org,Ned,{not json,enabled,"
            "2024-01-04 09:00:00 +0000 UTC,2024-01-04 09:00:00 +0000 UTC\n")


@pytest.fixture
def news(db):
    with db.session() as s:
        add_list(s, "news", "News")
        add_list(s, "press", "Press")
    return "news"


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=timezone.utc)


def statuses(db, slug: str = "news") -> dict[str, SubscriptionStatus]:
    with db.session() as s:
        return dict(s.execute(select(Subscriber.email_key, Subscription.status).join(Subscription)
                              .join(MailingList).where(MailingList.slug == slug)).all())


def suppressions(db) -> set[tuple[str, str, SuppressionReason]]:
    with db.session() as s:
        return set(s.execute(select(Suppression.email, Suppression.scope, Suppression.reason)).all())


def test_mailchimp_names_consent_tags_and_rejects(db, settings, news, tmp_path):
    path = write(tmp_path / "subscribed_members_export.csv", MAILCHIMP)
    report = import_csv(db, settings, path, news, confirmed=True)
    assert report.source == "mailchimp"
    assert (report.rows, report.subscribed, report.rejected, report.tags_normalised) == (4, 2, 2, 1)
    assert [line for line, _ in report.first_rejects] == [4, 5]
    assert "@-sign" in report.first_rejects[0][1]
    assert report.first_rejects[1][1] == "column 'OPTIN_TIME': not a date and time: 'yesterday'"
    with db.session() as s:
        ana = s.scalar(select(Subscriber).where(Subscriber.email_key == "ana@example.org"))
        bo = s.scalar(select(Subscriber).where(Subscriber.email_key == "bo@example.org"))
        assert (ana.name, bo.name) == ("Ana Silva", "Bo")
        # known columns are mapped or dropped (LEID, EUID); the others stay attributes
        assert ana.attributes["branch"] == "Eastfield" and ana.attributes["member_rating"] == "2"
        assert not {"first name", "optin_time", "confirm_ip", "tags", "leid", "euid"} & set(ana.attributes)
        consent = s.scalar(select(Consent).where(Consent.subscriber_id == ana.id))
        assert (consent.at, consent.ip) == (utc(2021, 3, 4, 10, 11, 12), "203.0.113.5")
        assert (consent.confirmed_at, consent.confirmed_ip) == (utc(2021, 3, 4, 10, 15), "203.0.113.6")
        assert consent.form_id == "import:subscribed_members_export.csv"
        plain = s.scalar(select(Consent).where(Consent.subscriber_id == bo.id))
        assert plain.ip == "" and plain.at > utc(2025, 1, 1) and plain.confirmed_at is not None
    assert tagging.tags_of(db, "ana@example.org") == ["tenants-union", "volunteer"]
    assert statuses(db) == {"ana@example.org": SubscriptionStatus.CONFIRMED,
                            "bo@example.org": SubscriptionStatus.CONFIRMED}


def test_mailchimp_unsubscribed_and_cleaned_exports_become_suppressions(db, settings, news, tmp_path):
    import_csv(db, settings, write(tmp_path / "subscribed.csv", MAILCHIMP), news, confirmed=True)
    report = import_csv(db, settings, write(tmp_path / "unsubscribed.csv", MC_UNSUB), news, confirmed=True)
    assert (report.export_suppressed, report.suppressions_added, report.subscriptions_ended) == (2, 2, 1)
    assert report.subscribed == 0
    report = import_csv(db, settings, write(tmp_path / "cleaned.csv", MC_CLEANED), news, confirmed=True)
    assert (report.export_suppressed, report.suppressions_added, report.subscribed) == (1, 1, 0)
    assert suppressions(db) == {("dee@example.org", "news", SuppressionReason.UNSUBSCRIBED),
                                ("ana@example.org", "news", SuppressionReason.UNSUBSCRIBED),
                                ("gone@example.org", "*", SuppressionReason.BOUNCED)}
    # unsubscribed: Ana's subscription ended, Dee never subscribed; cleaned: never subscribed anywhere
    assert statuses(db) == {"ana@example.org": SubscriptionStatus.UNSUBSCRIBED,
                            "bo@example.org": SubscriptionStatus.CONFIRMED}
    # a suppressed address in a later normal import stays unsubscribed (STANDARDS B8)
    later = import_csv(db, settings, write(tmp_path / "plain.csv", "email\nDee@example.org\nana@example.org\n"
                                                                   "gone@example.org\n"), news, confirmed=True)
    assert (later.suppressed, later.subscribed, later.confirmed) == (3, 0, 0)
    assert statuses(db) == {"ana@example.org": SubscriptionStatus.UNSUBSCRIBED,
                            "bo@example.org": SubscriptionStatus.CONFIRMED}
    assert statuses(db, "press") == {}
    import_csv(db, settings, write(tmp_path / "press.csv", "email\ngone@example.org\n"), "press", confirmed=True)
    assert statuses(db, "press") == {}


def test_substack_created_at_and_email_disabled(db, settings, news, tmp_path):
    path = write(tmp_path / "email_list.mypub.csv", SUBSTACK)
    report = import_csv(db, settings, path, news, confirmed=True)
    assert report.source == "substack"
    assert (report.subscribed, report.export_suppressed, report.rejected) == (1, 1, 1)
    assert report.first_rejects == [(4, "column 'created_at': not a date and time: '12/10/2025'")]
    assert statuses(db) == {"pia@example.org": SubscriptionStatus.CONFIRMED}
    assert suppressions(db) == {("quin@example.org", "news", SuppressionReason.UNSUBSCRIBED)}
    with db.session() as s:
        pia = s.scalar(select(Subscriber).where(Subscriber.email_key == "pia@example.org"))
        assert pia.attributes == {"active_subscription": "true", "expiry": "2027-01-01", "plan": "yearly",
                                  "first_payment_at": "2025-09-01T08:00:00.000Z"}
        consent = s.scalar(select(Consent).where(Consent.subscriber_id == pia.id))
        assert consent.at == utc(2025, 9, 1, 8)


def test_listmonk_attributes_status_and_go_times(db, settings, news, tmp_path):
    path = write(tmp_path / "subscribers.csv", LISTMONK)
    report = import_csv(db, settings, path, news)
    assert report.source == "listmonk"
    assert (report.subscribed, report.export_suppressed, report.rejected) == (1, 1, 1)
    assert report.first_rejects == [(4, "column 'attributes': not a JSON object")]
    assert statuses(db) == {"lou@example.org": SubscriptionStatus.PENDING}
    assert suppressions(db) == {("max@example.org", "*", SuppressionReason.UNSUBSCRIBED)}
    with db.session() as s:
        lou = s.scalar(select(Subscriber).where(Subscriber.email_key == "lou@example.org"))
        assert (lou.name, lou.attributes) == ("Lou Park", {"city": "Leeds", "age": "31"})
        consent = s.scalar(select(Consent).where(Consent.subscriber_id == lou.id))
        assert consent.at == utc(2024, 1, 2, 10, 11, 12) and consent.confirmed_at is None
    # blocklisted is global: a plain import into another list does not subscribe Max either
    later = import_csv(db, settings, write(tmp_path / "p.csv", "email\nmax@example.org\n"), "press")
    assert later.suppressed == 1 and statuses(db, "press") == {}


def test_blocklisting_ends_subscriptions_on_every_list(db, settings, news, tmp_path):
    import_csv(db, settings, write(tmp_path / "a.csv", "email\nmax@example.org\n"), "press", confirmed=True)
    import_csv(db, settings, write(tmp_path / "b.csv", LISTMONK), news)
    assert statuses(db, "press") == {"max@example.org": SubscriptionStatus.UNSUBSCRIBED}


@pytest.mark.parametrize("text, source, message", [
    ("Email,First Name,OPTIN_TIME,CONFIRM_TIME\nana@example.org,Ana,,\n", None,
     "looks like a Mailchimp export but has no 'Email Address' column"),
    ("email,uuid,attributes,name\nana@example.org,1,{},Ana\n", "listmonk",
     "looks like a Listmonk export but has no 'status' column"),
    ("email,name\nana@example.org,Ana\n", "substack",
     "looks like a Substack export but has no 'active_subscription' column"),
])
def test_a_known_export_missing_a_column_is_one_line(db, settings, news, tmp_path, text, source, message):
    path = write(tmp_path / "x.csv", text)
    with pytest.raises(InputError) as info:
        import_csv(db, settings, path, news, source=source)
    assert str(info.value) == f"{path}: line 1: {message}"
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Subscriber)) == 0


def test_interrupted_export_import_reruns_idempotently(db, settings, news, tmp_path):
    rows = "".join(",".join([f"u{i}@example.org", "U", str(i), "", "2", f"2021-01-0{1 + i} 00:00:00",
                             f"198.51.100.{i}"] + [""] * 14) + "\n" for i in range(6))
    unsub = "".join(f"x{i}@example.org,,,2,,,,,2023-01-01 00:00:00,,,,,,,\n" for i in range(6))
    sub_path = write(tmp_path / "s.csv", MC_HEADER + "\n" + rows)
    unsub_path = write(tmp_path / "u.csv", MC_UNSUB.splitlines()[0] + "\n" + unsub)

    def interrupt(done: int) -> None:
        raise KeyboardInterrupt

    for path in (sub_path, unsub_path):
        with pytest.raises(KeyboardInterrupt):
            import_csv(db, settings, path, news, batch_size=4, progress=interrupt, confirmed=True)
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Consent)) == 4
        assert s.scalar(select(func.count()).select_from(Suppression)) == 4
    for path in (sub_path, unsub_path, sub_path, unsub_path):
        import_csv(db, settings, path, news, batch_size=4, confirmed=True)
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Consent)) == 6
        assert s.scalar(select(func.count()).select_from(Suppression)) == 6
        ips = sorted(s.scalars(select(Consent.ip)))
    assert ips == sorted(f"198.51.100.{i}" for i in range(6))
    assert len(statuses(db)) == 6


def test_the_cli_names_the_format_and_counts(db, settings, news, tmp_path, project, db_url):
    env = {**TEST_ENV, "MAILER_ROOT": str(project), "MAILER_DATABASE_URL": db_url, "MAILER_BACKEND": "memory"}
    path = write(tmp_path / "subscribed.csv", MAILCHIMP)
    r = CliRunner().invoke(cli, ["subscribers", "import", str(path), "--list", "news", "--confirmed"], env=env)
    assert r.exit_code == 0, r.output
    assert f"{path} (mailchimp export): 4 rows, 2 rejected" in r.output
    assert "1 tags normalised" in r.output
    path = write(tmp_path / "u.csv", MC_UNSUB)
    r = CliRunner().invoke(cli, ["subscribers", "import", str(path), "--list", "news", "--from", "mailchimp"],
                           env=env)
    assert r.exit_code == 0 and "2 unsubscribed, cleaned or blocked in the export: suppressed" in r.output, r.output
    path = write(tmp_path / "bad.csv", "email,status\nana@example.org,enabled\n")
    r = CliRunner().invoke(cli, ["subscribers", "import", str(path), "--list", "news", "--from", "substack"],
                           env=env)
    assert r.exit_code != 0 and r.stderr.strip() == (
        f"error: {path}: line 1: looks like a Substack export but has no 'active_subscription' column")


def test_times_formatted_by_the_reader_are_what_the_column_type_stores(db):
    """The reader writes times as SQLite stores them; read back through the model they are the same."""
    from mailer.people.bulksql import BulkSQL
    from mailer.people.importformats import utc_text

    values = [utc(2021, 3, 4, 10, 11, 12), datetime(1999, 12, 31, 23, 59, 59, 123456, tzinfo=timezone.utc)]
    with db.engine.connect() as conn:
        sql = BulkSQL(conn)
        if sql.sqlite:
            assert [utc_text(v.replace(tzinfo=None)) for v in values] == [sql.ts(v) for v in values]
        conn.exec_driver_sql(f"INSERT INTO mailing_list (slug, name, description, opt_in, created_at, welcome_issue) "
                             f"VALUES ('t1', 'T', '', 'double', {sql.ph}, ''), ('t2', 'T', '', 'double', {sql.ph}, '')",
                             tuple(sql.utc_text_value(utc_text(v.replace(tzinfo=None))) for v in values))
        conn.commit()
    with db.session() as s:
        assert list(s.scalars(select(MailingList.created_at).where(MailingList.slug.in_(["t1", "t2"]))
                              .order_by(MailingList.slug))) == values


def test_a_dry_run_of_an_unsubscribed_export_writes_nothing(db, settings, news, tmp_path):
    import_csv(db, settings, write(tmp_path / "plain.csv", "email\nana@example.org\n"), news, confirmed=True)
    report = import_csv(db, settings, write(tmp_path / "u.csv", MC_UNSUB), news, dry_run=True)
    assert (report.export_suppressed, report.suppressions_added, report.subscriptions_ended) == (2, 2, 1)
    assert suppressions(db) == set()
    assert statuses(db) == {"ana@example.org": SubscriptionStatus.CONFIRMED}


def test_a_bad_ip_rejects_its_row(db, settings, news, tmp_path):
    bad = MAILCHIMP.replace("203.0.113.5", "<script>")
    report = import_csv(db, settings, write(tmp_path / "m.csv", bad), news)
    assert report.first_rejects[0] == (2, "column 'OPTIN_IP': not an IP address: '<script>'")
    assert "ana@example.org" not in statuses(db)


def test_a_child_reader_maps_exports_the_same(db, settings, news, tmp_path):
    """A large file is read by a second process: the format travels to it, and its errors back."""
    report = import_csv(db, settings, write(tmp_path / "m.csv", MAILCHIMP), news,
                        confirmed=True, child_min_bytes=0)
    assert (report.source, report.subscribed, report.rejected, report.tags_normalised) == ("mailchimp", 2, 2, 1)
    report = import_csv(db, settings, write(tmp_path / "u.csv", MC_UNSUB), news, child_min_bytes=0)
    assert (report.export_suppressed, report.subscriptions_ended) == (2, 1)
    with db.session() as s:
        dee = s.scalar(select(Consent).where(Consent.email == "dee@example.org"))
        ana = s.scalar(select(Consent).where(Consent.email == "ana@example.org"))
    assert dee is None and ana.confirmed_ip == "203.0.113.6"
    path = write(tmp_path / "x.csv", "email,name\nana@example.org,Ana\n")
    with pytest.raises(InputError, match="has no 'active_subscription' column"):
        import_csv(db, settings, path, news, source="substack", child_min_bytes=0)
    bare = write(tmp_path / "b.csv", MC_HEADER + "\n" + ",".join(["bea@example.org", "Bea"] + [""] * 5
                                                                  + ["2020-02-02 02:02:02"] + [""] * 13) + "\n")
    import_csv(db, settings, bare, news, confirmed=True)
    with db.session() as s:
        bea = s.scalar(select(Consent).where(Consent.email == "bea@example.org"))
    assert bea.at == bea.confirmed_at == utc(2020, 2, 2, 2, 2, 2)
