"""The public URLs that mails carry and the web app serves: one place builds them."""

from __future__ import annotations

from mailer.config import Settings
from mailer.mail.tokens import Purpose, make_link_token, make_token

# route paths of mailer.web; the web app registers exactly these
UNSUBSCRIBE_PATH = "/u/<token>"
PREFERENCES_PATH = "/p/<token>"
CONFIRM_PATH = "/confirm/<token>"
ARCHIVE_PATH = "/archive/<slug>"
# the optional query parameter naming the send a link was mailed in: public, not part of the proof
SEND_PARAM = "send"


def _url(settings: Settings, path: str, value: str) -> str:
    return settings.base_url.rstrip("/") + path.split("<", 1)[0] + value


def _link(settings: Settings, purpose: Purpose, uid: str, link_secret: str, list_slug: str) -> str:
    """A link proof when the subscriber's link secret is known (permanent), else a signed token."""
    if link_secret:
        return make_link_token(purpose, uid, link_secret, list_slug)
    return make_token(settings, purpose, uid, list_slug)


def unsubscribe_url(settings: Settings, subscriber_uid: str, list_slug: str, link_secret: str = "",
                    send_uid: str = "") -> str:
    """The List-Unsubscribe and in-body unsubscribe URL (RFC 8058 one-click target).

    *send_uid* (Send.uid, public) rides along as ``?send=`` so `mailer report` can count the
    unsubscribes an issue brought; the proof does not cover it and the link works without it.
    Send uids are hex (models.base.new_uid), so they need no quoting.
    """
    url = _url(settings, UNSUBSCRIBE_PATH, _link(settings, Purpose.UNSUBSCRIBE, subscriber_uid, link_secret, list_slug))
    return f"{url}?{SEND_PARAM}={send_uid}" if send_uid else url


def preferences_url(settings: Settings, subscriber_uid: str, list_slug: str = "", link_secret: str = "") -> str:
    """The preferences page of the subscriber (leave lists, download or erase their data)."""
    return _url(settings, PREFERENCES_PATH,
                _link(settings, Purpose.PREFERENCES, subscriber_uid, link_secret, list_slug))


def confirm_url(settings: Settings, subscriber_uid: str, list_slug: str) -> str:
    return _url(settings, CONFIRM_PATH, make_token(settings, Purpose.CONFIRM, subscriber_uid, list_slug))


def archive_url(settings: Settings, issue_slug: str) -> str:
    """The web version of an issue (no personal data)."""
    return _url(settings, ARCHIVE_PATH, issue_slug)
