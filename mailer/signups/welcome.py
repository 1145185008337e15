"""Welcome mails: a list's welcome issue, composed like any issue and personalised for one reader.

`people.subscriptions.queue_welcome` queues a `QueuedMail` row (kind WELCOME) once per
subscription, when it is confirmed by its owner (the web link, or a single opt-in sign-up) or
when an admin asks (`subscribers add --welcome`). The confirmation queue sends it:
`welcome_message` builds it here, a list message with its List-Unsubscribe headers. The composed
issue is cached per folder and content hash, so a burst of sign-ups composes it once.
"""

from __future__ import annotations

import threading

from mailer.config import Settings
from mailer.content.compose import ComposedIssue, compose_issue
from mailer.content.folders import content_hash, find_issue
from mailer.content.images import publish
from mailer.mail.message import MessageFactory, OutgoingMessage, Recipient
from mailer.models import MailingList, QueuedMail, Subscriber

_cache: dict[tuple[str, str], ComposedIssue] = {}
_lock = threading.Lock()


def welcome_issue(settings: Settings, mlist: MailingList) -> ComposedIssue:
    """The list's welcome issue, composed (ComposeError naming what is wrong with it)."""
    folder = find_issue(settings, mlist.welcome_issue)
    key = (str(folder), content_hash(settings, folder))
    with _lock:
        cached = _cache.get(key)
    if cached is None:
        cached = compose_issue(settings, folder, online=False)    # a welcome mail has no web version
        publish(cached.images)
        with _lock:
            _cache.clear()   # one version per process is enough: the list's current welcome
            _cache[key] = cached
    return cached


def welcome_message(settings: Settings, row: QueuedMail, subscriber: Subscriber,
                    mlist: MailingList) -> OutgoingMessage:
    issue = welcome_issue(settings, mlist)
    factory = MessageFactory(settings, subject=issue.subject, html=issue.html, text=issue.text,
                             issue_slug=issue.slug, preheader=issue.preheader)
    recipient = Recipient(key=f"welcome-{row.id}", email=subscriber.email, name=subscriber.name,
                          subscriber_uid=subscriber.uid, list_slug=mlist.slug, list_name=mlist.name,
                          attributes=subscriber.attributes or {})
    return factory.render(recipient)
