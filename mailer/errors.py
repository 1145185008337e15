"""Errors that reach the user as one clear line."""

from __future__ import annotations


class MailerError(Exception):
    """Base for every error the CLI prints as one line and exits non-zero on."""

    exit_code = 1


class ConfigError(MailerError):
    """A setting is missing or wrong; the message names it."""

    exit_code = 2


class InputError(MailerError):
    """A file, row, address or argument given by the user is wrong."""

    exit_code = 2


class ComposeError(InputError):
    """An issue folder, report or template cannot be composed."""


class DeliveryError(MailerError):
    """The delivery backend cannot work at all (unreachable, bad credentials, TLS)."""

    exit_code = 3
