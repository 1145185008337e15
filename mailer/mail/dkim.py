"""Optional DKIM signing (dkimpy) whose h= covers the list headers (STANDARDS A10).

dkimpy's default header list leaves out List-Unsubscribe-Post; we name the
headers explicitly. Signing is off unless dkim.selector, dkim.domain and
dkim.private_key_file are all set.
"""

from __future__ import annotations

from pathlib import Path

from mailer.config import Settings
from mailer.errors import ConfigError

# lower-case names, as they appear in h=; a header missing from a message is simply not signed
SIGNED_HEADERS = (
    "from", "to", "subject", "date", "message-id", "reply-to", "mime-version", "content-type",
    "list-id", "list-unsubscribe", "list-unsubscribe-post", "feedback-id",
)


class Signer:
    """Signs finished message bytes; the DKIM-Signature header goes first."""

    def __init__(self, selector: str, domain: str, private_key: bytes) -> None:
        self.selector = selector.encode("ascii")
        self.domain = domain.encode("ascii")
        self.private_key = private_key

    def sign(self, data: bytes) -> bytes:
        import dkim   # dkimpy (and dnspython under it) load only when a message is signed

        present = {line.split(b":", 1)[0].strip().lower()
                   for line in data.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
                   if line and line[:1] not in (b" ", b"\t")}
        include = [h.encode("ascii") for h in SIGNED_HEADERS if h.encode("ascii") in present]
        try:
            signature = dkim.sign(data, self.selector, self.domain, self.private_key,
                                  canonicalize=(b"relaxed", b"relaxed"), include_headers=include,
                                  linesep=b"\r\n")
        except dkim.DKIMException as exc:
            raise ConfigError(f"setting 'dkim.private_key_file': cannot sign: {exc}") from None
        return signature + data


def signer_from_settings(settings: Settings) -> Signer | None:
    """A Signer when DKIM is configured, None when it is off; ConfigError when half-configured."""
    parts = (settings.dkim_selector, settings.dkim_domain, settings.dkim_private_key_file)
    if not any(parts):
        return None
    if not all(parts):
        raise ConfigError("settings 'dkim.selector', 'dkim.domain' and 'dkim.private_key_file' "
                          "must be set together")
    path = settings.path(settings.dkim_private_key_file)
    try:
        key = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"setting 'dkim.private_key_file': cannot read {path}: {exc.strerror}") from None
    if b"PRIVATE KEY" not in key:
        raise ConfigError(f"setting 'dkim.private_key_file': {path} is not a PEM private key")
    return Signer(settings.dkim_selector, settings.dkim_domain, key)
