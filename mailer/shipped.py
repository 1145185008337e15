"""Where the files shipped with mailer live: the built-in templates (the web pages' CSS among
them), the example issue, and the Alembic migrations.

In a checkout or an editable install the templates and the example issue are the repository's
top-level ``templates/`` and ``issues/example/``; an installed wheel carries them inside the
package as ``mailer/_data/`` (mapped at build time, pyproject.toml's ``force-include``). The
choice follows where ``mailer`` was imported from: an editable install imports the checkout, so
the copy hatchling also leaves in site-packages/mailer/_data/ is never read. The package must be
installed as files, not imported from a zip. The floor: imports nothing from mailer.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

PACKAGE = Path(str(files("mailer"))).resolve()
# mailer/_data/ exists only in an installed wheel; otherwise the package sits in its repository
_DATA = PACKAGE / "_data"
_HOME = _DATA if _DATA.is_dir() else PACKAGE.parent

TEMPLATES = _HOME / "templates"
EXAMPLE_ISSUE = _HOME / "issues" / "example"
MIGRATIONS = PACKAGE / "migrations"
