"""`mailer doctor`: check the settings and the sending domain's DNS and web address before a first send."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from mailer.cli import AppContext, pass_app


@click.command("doctor")
@click.option("--dns-server", metavar="IP[:PORT]",
              help="Ask this DNS server (default: the system's, from /etc/resolv.conf).")
@click.option("--timeout", type=click.FloatRange(min=0.1), default=5.0, show_default=True,
              help="Seconds to wait for each DNS or HTTPS answer.")
@click.option("--relay-ip", "relay_ips", multiple=True, metavar="IP",
              help="The public address mail leaves from (repeatable; default: smtp.host's addresses).")
@click.option("--ca-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Trust this CA bundle for base_url instead of the system's.")
@pass_app
def doctor(app: AppContext, dns_server: str | None, timeout: float, relay_ips: tuple[str, ...],
           ca_file: Path | None) -> None:
    """Check settings, SPF, DKIM, DMARC, PTR and base_url before a first send; exit 1 on a failure.

    Each finding is one line: ok, warn or fail, what was found, and the fix.
    """
    from mailer.doctor import Status
    from mailer.doctor.run import Options, run_checks

    options = Options(dns_server, timeout, relay_ips, str(ca_file) if ca_file else None)
    counts = {status: 0 for status in Status}
    for finding in run_checks(app.settings, options):
        counts[finding.status] += 1
        click.echo(finding.line())
    click.echo(", ".join(f"{n} {status.value}" for status, n in counts.items()))
    if counts[Status.FAIL]:
        sys.exit(1)


COMMANDS = [doctor]
