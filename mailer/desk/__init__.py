"""The editor's desk: accounts, sessions and the web admin at /desk/.

- audit:    the desk's audit log (`desk_audit`), and the failed-login counts the limiter reads
- accounts: desk accounts, argon2 passwords, one-time set-password links (the CLI's `mailer users`)
- sessions: server-side sessions, login with its rate limit, per-session CSRF tokens
- issues:   what the desk shows of the issue folders (draft, scheduled, sent)
- pages:    HTTP only (a Flask blueprint at /desk/, a module per part): parse, call the modules above, render

Everything but `views` is below the web layer: it may import people, sending,
scheduling, content and the floor, and holds the SQL; `pages` holds none.
"""
