"""Sign-up: the hosted form, its embeddable variant, and the logic the JSON API shares.

Whatever the address's state, a valid sign-up gets the same answer (no
enumeration). The request only validates, checks the rate limits (in memory) and
stores one intake row; the sign-up runner then subscribes, stores the consent record
and queues exactly one confirmation mail (C1), subject to the cool-down (C5):
see `mailer.signups.intake`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from flask import Blueprint, abort, g, request

from mailer.errors import InputError
from mailer.models import ConsentSource, MailingList
from mailer.people.subscriptions import Address, clean_name, normalize_email
from mailer.signups import limits
from mailer.signups.intake import Signup, record_signup, signup_list
from mailer.web.guard import FORM_TOKEN_FIELD, HONEYPOT_FIELD, client_ip, origin_allowed, own_origins
from mailer.web.pages import WebContext, message_page, page, web

bp = Blueprint("signup", __name__)
MAX_NAME = 200
THANKS = ("Thank you! If we need you to confirm your address, a mail is on its way: "
          "please open the link in it. You can close this page.")


class FieldError(InputError):
    """A sign-up field is wrong; `field` names it for the form and the API."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class SignupRequest:
    address: Address
    name: str


def read_fields(fields: Mapping[str, object], consent: object) -> SignupRequest:
    """Validate email, name and consent; raise FieldError naming the field."""
    email = fields.get("email")
    name = fields.get("name") or ""
    if not isinstance(email, str) or not isinstance(name, str):
        raise FieldError("email", "email and name must be text")
    try:
        address = normalize_email(email)
    except InputError as exc:
        raise FieldError("email", str(exc)) from None
    if len(name) > MAX_NAME:
        raise FieldError("name", f"name is longer than {MAX_NAME} characters")
    try:
        clean = clean_name(name)
    except InputError as exc:
        raise FieldError("name", str(exc)) from None
    if consent is not True:
        raise FieldError("consent", "please tick the box to agree to receive the newsletter")
    return SignupRequest(address, clean)


def sign_up(ctx: WebContext, slug: str, req: SignupRequest, source: ConsentSource, form_id: str) -> None:
    """Record the sign-up for the runner; raise RateLimited or InputError (unknown list)."""
    signup = Signup(address=req.address, name=req.name, source=source, form_id=form_id,
                    ip=client_ip(request), user_agent=request.headers.get("User-Agent", ""))
    record_signup(ctx.settings, ctx.limiter, ctx.writer, slug, signup)
    ctx.wake_runner()


def _list_or_404(ctx: WebContext, slug: str) -> MailingList:
    mlist = signup_list(ctx.db, slug)
    if mlist is None:
        abort(404)
    return mlist


def _form(mlist: MailingList, status: int = 200, error: str = "", field: str = "",
          values: Mapping[str, str] | None = None) -> tuple[str, int]:
    settings = web().settings
    return page("signup.html", status, mlist=mlist, consent_text=settings.consent_text,
                consent_version=settings.consent_version, error=error, error_field=field,
                values=values or {}, honeypot=HONEYPOT_FIELD)


@bp.get("/subscribe/<slug>")
def form(slug: str):  # type: ignore[no-untyped-def]
    return _form(_list_or_404(web(), slug))


@bp.get("/embed/<slug>")
def embed(slug: str):  # type: ignore[no-untyped-def]
    """The form alone, frameable by settings.web_embed_origins."""
    ctx = web()
    g.frame_origins = ctx.settings.web_embed_origins
    return _form(_list_or_404(ctx, slug))


@bp.post("/subscribe/<slug>")
def submit(slug: str):  # type: ignore[no-untyped-def]
    """The success path asks the database nothing but the sign-up itself; the list is checked by its INSERT."""
    ctx = web()
    settings = ctx.settings
    if request.form.get("embed"):
        g.frame_origins = settings.web_embed_origins
    allowed = own_origins(settings, request) | set(settings.web_embed_origins)
    if not origin_allowed(request, allowed):
        _list_or_404(ctx, slug)
        return message_page("Not accepted", "This form was sent from another website, so it was not "
                            "accepted. Please use the form on our own page.", 403)
    if not ctx.forms.valid(request.form.get(FORM_TOKEN_FIELD)):
        return _form(_list_or_404(ctx, slug), 403, "This form has expired. Please check your details and "
                     "send it again.", values=request.form)
    if request.form.get(HONEYPOT_FIELD):
        _list_or_404(ctx, slug)
        return message_page("Thank you", THANKS, 200)
    try:
        req = read_fields(request.form, request.form.get("consent") == "yes")
        sign_up(ctx, slug, req, ConsentSource.WEB, form_id=f"web:{slug}")
    except FieldError as exc:
        return _form(_list_or_404(ctx, slug), 400, str(exc), exc.field, request.form)
    except limits.RateLimited as exc:
        return message_page("Please wait", f"Sorry: {exc}.", 429)
    except InputError:
        abort(404)
    return message_page("Thank you", THANKS, 200)
