"""Delivery backends: built-in ones by name, third-party ones by ``module:Class`` or entry point.

A third-party package declares its backend in the ``mailer.backends``
entry-point group, e.g. in its pyproject.toml::

    [project.entry-points."mailer.backends"]
    sendgrid = "mailer_sendgrid:SendgridBackend"

and a group selects it with ``backend = "sendgrid"`` in mailer.toml.
"""

from __future__ import annotations

from importlib import import_module
from importlib.metadata import entry_points

from mailer.backends.base import Backend
from mailer.config import Settings
from mailer.errors import ConfigError

BUILTIN = {
    "smtp": "mailer.backends.smtp:SMTPBackend",
    "file": "mailer.backends.file:FileBackend",
    "memory": "mailer.backends.memory:MemoryBackend",
}
GROUP = "mailer.backends"


def _import(spec: str, where: str) -> type:
    module_name, _, attr = spec.partition(":")
    try:
        obj = getattr(import_module(module_name), attr)
    except ImportError as exc:
        raise ConfigError(f"{where}: cannot import {module_name!r}: {exc}") from None
    except AttributeError:
        raise ConfigError(f"{where}: {module_name!r} has no {attr!r}") from None
    return obj


def load_backend(settings: Settings, name: str | None = None) -> Backend:
    """The backend named *name* (default: setting 'backend'), constructed with *settings*."""
    name = (name or settings.backend).strip()
    where = f"setting 'backend' ({name!r})"
    if name in BUILTIN:
        cls = _import(BUILTIN[name], where)
    elif ":" in name:
        cls = _import(name, where)
    else:
        found = [ep for ep in entry_points(group=GROUP) if ep.name == name]
        if not found:
            known = sorted(set(BUILTIN) | {ep.name for ep in entry_points(group=GROUP)})
            raise ConfigError(f"{where}: unknown backend; use one of {', '.join(known)} or module:Class")
        try:
            cls = found[0].load()
        except Exception as exc:  # a broken plugin must not show a traceback
            raise ConfigError(f"{where}: cannot load entry point {found[0].value!r}: {exc}") from None
    if not (isinstance(cls, type) and issubclass(cls, Backend)):
        raise ConfigError(f"{where}: {cls!r} is not a mailer.backends.base.Backend subclass")
    return cls(settings)
