"""mailer: a newsletter and mailing pipeline for activist groups."""

__version__ = "0.1.0"
