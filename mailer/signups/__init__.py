"""Sign-ups: web intake rows made into subscriptions, and their confirmation mails.

Owns the intake writer, the sign-up rate limits, applying intake rows and
the confirmation-mail queue, with the runner that drives them (in the web
process or in `mailer worker`). May import people, mail, backends, content
and the floor; never web or cli.
"""
