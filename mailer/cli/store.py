"""Commands of mailer (filled in by their issue)."""

COMMANDS: list = []
