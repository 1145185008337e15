"""Who on the lists a desk send goes to: tags, a saved segment, lists and a segment left out, on the
confirmation and the schedule; the count confirmed is the rows frozen, a count that changed meanwhile
is asked again (409), and bad fields are 422 naming the field with nothing made.

SQLite and PostgreSQL (the `desk` fixture). news: user0-2; bulletin: user2-3 (user2 on both).
"""

from __future__ import annotations

import html
from urllib.parse import urlencode

from mailer.models import Schedule, Send
from mailer.people import tagging
from tests.desk_fixtures import EDITOR, Desk, desk, text_of, web_app  # noqa: F401
from tests.test_desk_sending import SEND, audit_rows, deliveries, rows, sending  # noqa: F401


def confirm(desk: Desk, **fields: str | list[str]) -> str:
    page = desk.editor.get(f"{SEND}/now?" + urlencode(fields, doseq=True))
    assert page.status_code == 200, page.text
    return text_of(page.text)


def test_tags_limit_the_count_and_the_rows_frozen_are_that_count(sending: Desk) -> None:
    desk = sending
    tagging.tag(desk.web.db, "user0@example.net", ["eastfield"])
    tagging.tag(desk.web.db, "user1@example.net", ["mill-lane"])
    tagging.tag(desk.web.db, "user3@example.net", ["eastfield"])      # on bulletin only: not chosen
    text = confirm(desk, list="news", tags="eastfield, mill-lane")
    assert "news 2" in text and "In all 2 people" in text
    assert "tagged eastfield or mill-lane" in text and "Send to 2 people" in text
    done = desk.post(desk.editor, f"{SEND}/now", {"list": ["news"], "tags": "eastfield, mill-lane",
                                                  "expected": "2"}, form_page=SEND)
    assert done.status_code == 303, done.text
    [send] = rows(desk, Send)
    assert send.audience == {"tags": ["eastfield", "mill-lane"]}
    assert sorted(deliveries(desk, send.id)) == ["user0@example.net", "user1@example.net"]
    assert audit_rows(desk) == [("send_now", EDITOR, "issue 2026-12-news",
                                 f"send {send.id} to news (tags=eastfield, mill-lane)")]


def test_a_segment_and_an_excluded_list_and_segment(sending: Desk) -> None:
    desk = sending
    tagging.add_segment(desk.web.db, "not-zero", 'email != "user0@example.net"')
    tagging.add_segment(desk.web.db, "one", 'email = "user1@example.net"')
    page = desk.editor.get(SEND)
    assert '<option value="not-zero">not-zero</option>' in page.text and 'name="exclude_list"' in page.text
    # news and bulletin are user0-3; not-zero leaves user1-3; not on bulletin leaves user1; not in one: none
    text = confirm(desk, list=["news", "bulletin"], segment="not-zero", exclude_list="bulletin")
    assert "In all 1 person" in text and "not on bulletin" in text
    nobody = confirm(desk, list=["news", "bulletin"], segment="not-zero", exclude_list="bulletin",
                     exclude_segment="one")
    assert "Nobody on news, bulletin would get it" in nobody and "Send to" not in nobody
    refused = desk.post(desk.editor, f"{SEND}/now", {"list": ["news", "bulletin"], "segment": "not-zero",
                                                     "exclude_list": "bulletin", "exclude_segment": "one"},
                        form_page=SEND)
    assert refused.status_code == 422 and "nothing to send" in html.unescape(refused.text)
    assert rows(desk, Send) == []
    done = desk.post(desk.editor, f"{SEND}/now", {"list": ["news", "bulletin"], "segment": "not-zero",
                                                  "exclude_list": "bulletin", "expected": "1"}, form_page=SEND)
    assert done.status_code == 303
    [send] = rows(desk, Send)
    assert list(deliveries(desk, send.id)) == ["user1@example.net"]
    # stored by expression: editing or removing the segment later changes no send
    assert send.audience == {"segment": 'email != "user0@example.net"', "exclude_lists": ["bulletin"]}


def test_a_count_that_changed_since_it_was_shown_is_asked_again(sending: Desk) -> None:
    desk = sending
    tagging.tag(desk.web.db, "user0@example.net", ["eastfield"])
    assert "In all 1 person" in confirm(desk, list="news", tags="eastfield")
    tagging.tag(desk.web.db, "user1@example.net", ["eastfield"])      # a second reader tagged meanwhile
    again = desk.post(desk.editor, f"{SEND}/now", {"list": ["news"], "tags": "eastfield", "expected": "1"},
                      form_page=SEND)
    assert again.status_code == 409
    text = text_of(again.text)
    assert "The audience changed since it was counted: 2 now, 1 then" in text and "Send to 2 people" in text
    assert rows(desk, Send) == [] and audit_rows(desk) == []
    done = desk.post(desk.editor, f"{SEND}/now", {"list": ["news"], "tags": "eastfield", "expected": "2"},
                     form_page=SEND)
    assert done.status_code == 303 and len(deliveries(desk, rows(desk, Send)[0].id)) == 2


def test_schedule_keeps_the_audience_on_its_send(sending: Desk) -> None:
    desk = sending
    tagging.add_segment(desk.web.db, "ones", 'email contains "1@"')
    done = desk.post(desk.editor, f"{SEND}/schedule", {"at": "2031-07-01T09:00", "list": ["news"],
                                                       "segment": "ones", "exclude_list": "bulletin"},
                     form_page=SEND)
    assert done.status_code == 303, done.text
    [schedule] = rows(desk, Schedule)
    [send] = rows(desk, Send)
    assert schedule.send_id == send.id
    assert send.audience == {"segment": 'email contains "1@"', "exclude_lists": ["bulletin"]}
    shown = html.unescape(text_of(desk.editor.get("/desk/schedules").text))
    assert 'in segment (email contains "1@")' in shown and "not on bulletin" in shown


def test_bad_audience_fields_are_422_naming_the_field_and_make_nothing(sending: Desk) -> None:
    desk = sending
    cases = [
        ({"tags": "x" * 100}, "Only people tagged: tag"),
        ({"tags": "ok; DROP TABLE subscribers"}, "Only people tagged: tag"),
        ({"segment": "nope"}, "Only people in segment: nope: no such segment"),
        ({"exclude_segment": "nope"}, "Leave out segment: nope: no such segment"),
        ({"exclude_list": "nope"}, "Leave out the people on: there is no list 'nope'"),
        ({"tags": " ".join(f"t{i}" for i in range(21))}, "Only people tagged: at most 20 tags"),
    ]
    for fields, words in cases:
        page = desk.editor.get(f"{SEND}/now?" + urlencode({"list": "news", **fields}))
        assert page.status_code == 422 and words in html.unescape(page.text), (fields, page.text)
        assert "<details class=\"audience\" open>" in page.text           # the fields shown again, filled
        for action, extra in (("now", {}), ("schedule", {"at": "2031-07-01T09:00"})):
            refused = desk.post(desk.editor, f"{SEND}/{action}", {"list": ["news"], **fields, **extra},
                                form_page=SEND)
            assert refused.status_code == 422 and words in html.unescape(refused.text), (action, fields)
    assert rows(desk, Send) == [] and rows(desk, Schedule) == [] and audit_rows(desk) == []
