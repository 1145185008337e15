"""CSV import: bad rows, suppression (B8), idempotence, dry run, batches; on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from sqlalchemy import func, select

from mailer.people.addresses import fast_normalize
from mailer.errors import InputError
from mailer.people.importing import import_csv
from mailer.people.lists import add_list
from mailer.people.dataexport import person_data
from mailer.models import (AuditEvent, Consent, ConsentSource, Reason, Subscriber, Subscription,
                           SubscriptionStatus)
from mailer.people.subscriptions import normalize_email, unsubscribe


@pytest.fixture
def news(db):
    with db.session() as s:
        add_list(s, "news", "News")
    return "news"


def write(path: Path, data: str | bytes) -> Path:
    path.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
    return path


def count(db, model) -> int:
    with db.session() as s:
        return s.scalar(select(func.count()).select_from(model))


def rejects(path: Path) -> list[tuple[int, str]]:
    with open(path, encoding="utf-8", newline="") as f:
        return [(int(r["line"]), r["reason"]) for r in csv.DictReader(f)]


def test_bom_semicolon_case_insensitive_headers_and_attributes(db, settings, news, tmp_path):
    path = write(tmp_path / "m.csv", "\ufeffE-Mail;NAME;City\nAna@Example.ORG;Ana;Lisboa\nbo@example.org;;\n")
    report = import_csv(db, settings, path, news, confirmed=True)
    assert (report.rows, report.new_subscribers, report.subscribed, report.rejected) == (2, 2, 2, 0)
    with db.session() as s:
        ana = s.scalar(select(Subscriber).where(Subscriber.email_key == "ana@example.org"))
        assert (ana.email, ana.name, ana.attributes) == ("Ana@example.org", "Ana", {"city": "Lisboa"})
        sub = s.scalar(select(Subscription).where(Subscription.subscriber_id == ana.id))
        assert sub.status is SubscriptionStatus.CONFIRMED and sub.reason is Reason.IMPORT
        consent = s.scalar(select(Consent).where(Consent.subscriber_id == ana.id))
        assert consent.source is ConsentSource.IMPORT and consent.form_id == "import:m.csv"
        assert consent.confirmed_at is not None
        # one audit event for the batch, not one per person: each person's record is the consent row
        events = s.execute(select(AuditEvent.subscriber_id, AuditEvent.action, AuditEvent.new_status,
                                  AuditEvent.detail)).all()
        assert events == [(None, "import", "confirmed", "import:m.csv lines 2-3: 2 subscribed, "
                                                        "0 pending now confirmed")]
        data = person_data(s, settings, ana)
        assert [(c["source"], c["form_id"], c["list"]) for c in data["consents"]] == [
            ("import", "import:m.csv", "news")]


def test_duplicates_in_file_and_against_db_are_merged(db, settings, news, tmp_path):
    """Ana@Example.ORG and ana@example.org are one subscriber, in one file and across imports."""
    path = write(tmp_path / "m.csv", "email,name,team\nAna@Example.ORG,,red\nana@example.org,Ana,\n")
    report = import_csv(db, settings, path, news, batch_size=1)  # across batches too
    assert (report.new_subscribers, report.duplicates_in_file, report.subscribed) == (1, 1, 1)
    again = write(tmp_path / "n.csv", "mail,name\nANA@example.org,Other\n")
    report = import_csv(db, settings, again, news)
    assert (report.existing_subscribers, report.new_subscribers, report.already_subscribed) == (1, 0, 1)
    with db.session() as s:
        ana = s.scalar(select(Subscriber))
        assert (ana.name, ana.attributes) == ("Ana", {"team": "red"})
    assert count(db, Subscriber) == 1 and count(db, Subscription) == 1 and count(db, Consent) == 1


def test_reimport_is_idempotent(db, settings, news, tmp_path):
    path = write(tmp_path / "m.csv", "email\n" + "".join(f"u{i}@example.org\n" for i in range(30)))
    import_csv(db, settings, path, news, batch_size=7)
    tables = [Subscriber, Subscription, Consent, AuditEvent]
    before = [count(db, t) for t in tables]
    report = import_csv(db, settings, path, news, batch_size=7)
    assert report.subscribed == 0 and report.already_subscribed == 30
    assert [count(db, t) for t in tables] == before == [30, 30, 30, 5]  # an audit event per batch of 7
    with db.session() as s:
        assert s.scalars(select(AuditEvent.detail).order_by(AuditEvent.id)).all()[-1] == (
            "import:m.csv lines 30-31: 2 subscribed, 0 pending now confirmed")


def test_pending_import_then_confirmed_import_confirms(db, settings, news, tmp_path):
    path = write(tmp_path / "m.csv", "email\nana@example.org\n")
    import_csv(db, settings, path, news)
    report = import_csv(db, settings, path, news, confirmed=True)
    assert report.confirmed == 1
    with db.session() as s:
        assert s.scalar(select(Subscription.status)) is SubscriptionStatus.CONFIRMED
        assert s.scalars(select(AuditEvent.detail).order_by(AuditEvent.id)).all() == [
            "import:m.csv lines 2-2: 1 subscribed, 0 pending now confirmed",
            "import:m.csv lines 2-2: 0 subscribed, 1 pending now confirmed"]
        assert [c.confirmed_at is not None for c in s.scalars(select(Consent).order_by(Consent.id))] == [
            False, True]


def test_suppressed_addresses_are_never_made_sendable_and_counted(db, settings, news, tmp_path):
    """STANDARDS B8: re-importing an unsubscribed address keeps it unsubscribed; the report counts it."""
    path = write(tmp_path / "m.csv", "email\nana@example.org\nbo@example.org\n")
    import_csv(db, settings, path, news, confirmed=True)
    with db.session() as s:
        ana = s.scalar(select(Subscriber).where(Subscriber.email_key == "ana@example.org"))
        unsubscribe(s, settings, ana, None, Reason.USER, actor="test")
    report = import_csv(db, settings, write(tmp_path / "n.csv", "email\nANA@example.org\n"), news, confirmed=True)
    assert report.suppressed == 1 and report.subscribed == report.confirmed == 0
    with db.session() as s:
        statuses = dict(s.execute(select(Subscriber.email_key, Subscription.status).join(Subscription)).all())
    assert statuses == {"ana@example.org": SubscriptionStatus.UNSUBSCRIBED,
                        "bo@example.org": SubscriptionStatus.CONFIRMED}


def test_dry_run_changes_nothing(db, settings, news, tmp_path):
    path = write(tmp_path / "m.csv", "email\nana@example.org\nana@example.org\nnot-an-address\n")
    report = import_csv(db, settings, path, news, dry_run=True, batch_size=1)
    assert (report.new_subscribers, report.duplicates_in_file, report.rejected) == (1, 1, 1)
    assert count(db, Subscriber) == 0 and count(db, Consent) == 0 and count(db, AuditEvent) == 0
    assert report.rejects_path is None and not list(settings.path("subscribers").glob("*-rejects.csv"))


def test_every_kind_of_bad_row_is_reported_with_its_line(db, settings, news, tmp_path):
    long_line = "x" * (11 * 1024 * 1024)
    data = ("email,name\n"
            "good@example.org,Good\n"
            "not-an-address,A\n"
            "\"evil@example.org\r\nBcc: x@example.org\",B\n"  # address with CRLF, spans two lines
            "c@example.org,\"C\r\nBcc: x@example.org\"\n"       # display name with CRLF
            f"{long_line}@example.org,D\n"                       # an 11 MB line
            "e@example.org,E,extra\n"                            # more fields than the header
            "good2@example.org,Good2\n").encode()
    data += "caf\xe9@example.org,F\n".encode("latin-1")          # not UTF-8
    path = write(tmp_path / "members.csv", data)
    report = import_csv(db, settings, path, news)
    assert report.subscribed == 2 and report.rejected == 6
    found = rejects(settings.path("subscribers") / "members-rejects.csv")
    assert [line for line, _ in found] == [3, 4, 6, 8, 9, 11]
    reasons = dict(found)
    assert "@-sign" in reasons[3] and "line break" in reasons[4] and "name" in reasons[6]
    assert "longer than" in reasons[8] and "fields but the header has 2" in reasons[9]
    assert reasons[11] == "not UTF-8 text"


@pytest.mark.parametrize("data, message", [
    ("name,city\nAna,Lisboa\n", "no email column"),
    ("email|name\nana@example.org|Ana\n", "delimiter"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary data"),
    ("Nom;Pr\xe9nom;email\n".encode("latin-1"), "not UTF-8"),
    ("", "empty file"),
    ("email,Email\na,b\n", "appears twice"),
])
def test_unusable_files_give_one_clear_line_and_change_nothing(db, settings, news, tmp_path, data, message):
    path = write(tmp_path / "bad.csv", data)
    with pytest.raises(InputError, match=message) as info:
        import_csv(db, settings, path, news)
    assert str(info.value).startswith(f"{path}:") and "\n" not in str(info.value)
    assert count(db, Subscriber) == 0


def test_a_failing_batch_is_rolled_back_whole_and_a_rerun_completes(db, settings, news, tmp_path):
    """An interrupted import leaves whole batches only; re-running it finishes the job."""
    path = write(tmp_path / "m.csv", "email\n" + "".join(f"u{i}@example.org\n" for i in range(10)))
    calls = []

    def interrupt(done: int) -> None:
        calls.append(done)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        import_csv(db, settings, path, news, batch_size=4, progress=interrupt)
    assert count(db, Subscriber) == 4 and count(db, Subscription) == 4 and count(db, Consent) == 4
    report = import_csv(db, settings, path, news, batch_size=4)
    assert (report.subscribed, report.already_subscribed) == (6, 4)
    assert count(db, Subscription) == 10 and count(db, Consent) == 10


def test_unknown_list_is_refused(db, settings, tmp_path):
    with pytest.raises(InputError, match="unknown list 'nope'"):
        import_csv(db, settings, write(tmp_path / "m.csv", "email\na@example.org\n"), "nope")


@pytest.mark.parametrize("raw", [
    "ana@example.org", "Ana@Example.ORG", " ana@example.org ", "ana@example.org\t", "a.b+c@sub.example.co.uk",
    "Postmaster@example.org", "a..b@example.org", ".a@example.org", "a@example", "a@localhost", "a@b.invalid",
    "ana@exämple.org", "änä@example.org", '"quoted"@example.org', "Ana <ana@example.org>", "a=?b@example.org",
    "a@-bad.org", "a@" + "x" * 64 + ".org", "x" * 65 + "@example.org", "a@[127.0.0.1]", "a@ex_ample.org",
    "a@EXAMPLE.ORG.", "ana@xn--exmple-cua.org", "a@b@example.org", "@example.org", "a@",
])
def test_fast_validation_equals_email_validator(raw):
    """The cached fast path gives exactly normalize_email's answer, valid or not."""
    try:
        expected = normalize_email(raw)
    except InputError as exc:
        with pytest.raises(InputError) as info:
            fast_normalize(raw)
        assert str(info.value) == str(exc)
    else:
        assert fast_normalize(raw) == expected


def test_a_child_process_reads_the_same_rows_and_reports_the_same_rejects(db, settings, news, tmp_path):
    """Large files are read by a child process (child_min_bytes): same rows, rejects, lines and counts."""
    data = ("email;name;city\n" + "".join(f"u{i}@example.org;U {i};C{i % 3}\n" for i in range(50))
            + "not-an-address;X;\nU7@EXAMPLE.org;;Porto\n\"a@example.org\r\nBcc: x@example.org\";Y;\n")
    path = write(tmp_path / "big.csv", data)
    report = import_csv(db, settings, path, news, batch_size=16, child_min_bytes=0)
    assert (report.rows, report.new_subscribers, report.duplicates_in_file, report.rejected) == (53, 50, 1, 2)
    assert [line for line, _ in rejects(settings.path("subscribers") / "big-rejects.csv")] == [52, 54]
    assert count(db, Subscriber) == count(db, Subscription) == count(db, Consent) == 50
    with db.session() as s:
        u7 = s.scalar(select(Subscriber).where(Subscriber.email_key == "u7@example.org"))
        assert (u7.name, u7.attributes) == ("U 7", {"city": "Porto"})


def test_a_child_process_reports_an_unusable_file_in_one_line(db, settings, news, tmp_path):
    path = write(tmp_path / "bad.csv", "name,city\nAna,Lisboa\n")
    with pytest.raises(InputError, match="no email column") as info:
        import_csv(db, settings, path, news, child_min_bytes=0)
    assert str(info.value).startswith(f"{path}:") and "\n" not in str(info.value)
    assert count(db, Subscriber) == 0


def test_an_interrupt_stops_the_child_reader_and_leaves_whole_batches(db, settings, news, tmp_path):
    path = write(tmp_path / "m.csv", "email\n" + "".join(f"u{i}@example.org\n" for i in range(100)))

    def interrupt(done: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        import_csv(db, settings, path, news, batch_size=10, progress=interrupt, child_min_bytes=0)
    assert count(db, Subscriber) == 10 and count(db, Subscription) == 10 and count(db, Consent) == 10
    report = import_csv(db, settings, path, news, batch_size=10, child_min_bytes=0)
    assert (report.subscribed, report.already_subscribed) == (90, 10)


def test_uids_are_time_ordered_and_unguessable(db, settings, news, tmp_path):
    """New uids sort after older ones (the index grows at its end) and carry 80 random bits."""
    import_csv(db, settings, write(tmp_path / "a.csv", "email\nzed@example.org\nann@example.org\n"), news)
    import_csv(db, settings, write(tmp_path / "b.csv", "email\nbob@example.org\n"), news)
    with db.session() as s:
        uids = s.scalars(select(Subscriber.uid).order_by(Subscriber.id)).all()
    assert len(set(uids)) == 3 and all(len(u) == 32 and int(u, 16) >= 0 for u in uids)
    assert uids == sorted(uids) and len({u[12:] for u in uids}) == 3


@pytest.mark.parametrize("batch_size", [1, 2, 20000])
def test_a_repeated_address_is_one_subscribed_and_the_rest_duplicates(db, settings, news, tmp_path, batch_size):
    """Duplicates are counted per row, whatever the batches: 5 rows of one address = 1 subscribed, 4 duplicates."""
    path = write(tmp_path / "m.csv", "email\n" + "ana@example.org\n" * 5)
    report = import_csv(db, settings, path, news, batch_size=batch_size)
    assert (report.subscribed, report.duplicates_in_file, report.already_subscribed, report.new_subscribers) \
        == (1, 4, 0, 1)
    again = import_csv(db, settings, path, news, batch_size=batch_size)   # now she exists beforehand
    assert (again.existing_subscribers, again.already_subscribed, again.duplicates_in_file, again.subscribed) \
        == (1, 1, 4, 0)
    assert count(db, Subscription) == 1 and count(db, Consent) == 1


@pytest.mark.parametrize("where", ["under-a-file", "a-folder"])
def test_an_unwritable_rejects_path_is_refused_before_any_row(db, settings, news, tmp_path, where):
    path = write(tmp_path / "m.csv", "email\n" + "".join(f"u{i}@example.org\n" for i in range(10)) + "bad\n")
    (tmp_path / "afile").write_text("x")
    (tmp_path / "adir").mkdir()
    target = tmp_path / "afile" / "r.csv" if where == "under-a-file" else tmp_path / "adir"
    with pytest.raises(InputError) as caught:
        import_csv(db, settings, path, news, batch_size=2, rejects_path=target)
    assert str(caught.value).startswith(f"{target}: ") and "\n" not in str(caught.value)
    assert count(db, Subscriber) == 0 and count(db, Subscription) == 0


def test_the_rejects_file_is_written_when_writable(db, settings, news, tmp_path):
    path = write(tmp_path / "m.csv", "email\nu1@example.org\nbad\n")
    report = import_csv(db, settings, path, news, rejects_path=tmp_path / "out" / "r.csv")
    assert report.rejects_path == tmp_path / "out" / "r.csv" and rejects(report.rejects_path)[0][0] == 3
    assert not (tmp_path / "out" / "r.tmp").exists()
    clean = write(tmp_path / "m.csv", "email\nu2@example.org\n")
    assert import_csv(db, settings, clean, news, rejects_path=tmp_path / "out" / "r.csv").rejects_path is None
    assert list((tmp_path / "out").iterdir()) == []   # the old report would mislead: gone
