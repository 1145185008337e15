"""A real DNS server on loopback (Debian's dnsmasq) answering from a zone the test writes.

dnsmasq runs in the foreground on a free port, reads no config file, no /etc/hosts and no
upstream servers, and is authoritative for every name (`--local=/#/`): a name the zone does not
hold is NXDOMAIN, as on the internet, never a forwarded query.
"""

from __future__ import annotations

import ipaddress
import os
import pwd
import shutil
import socket
import subprocess
from dataclasses import dataclass, field

from tests.helpers import free_port, wait_for


DNSMASQ = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"


def available() -> bool:
    return os.path.exists(DNSMASQ)


@dataclass
class Zone:
    """Records as dnsmasq options: TXT, A/AAAA (with no PTR), PTR and MX."""

    options: list[str] = field(default_factory=list)

    def txt(self, name: str, text: str) -> "Zone":
        """One TXT record; text longer than 255 octets is split into strings as DNS needs.

        On dnsmasq's command line a comma separates strings and quotes are kept as text.
        """
        if "," in text or '"' in text:
            raise ValueError(f"dnsmasq's --txt-record cannot hold a comma or a quote: {text!r}")
        chunks = [text[i:i + 255] for i in range(0, len(text), 255)] or [""]
        self.options.append(f"--txt-record={name}," + ",".join(chunks))
        return self

    def host(self, name: str, *addresses: str) -> "Zone":
        for address in addresses:
            self.options.append(f"--host-record={name},{address}")
        return self

    def ptr(self, ip: str, name: str) -> "Zone":
        self.options.append(f"--ptr-record={ipaddress.ip_address(ip).reverse_pointer},{name}")
        return self

    def mx(self, domain: str, exchange: str, preference: int = 10) -> "Zone":
        self.options.append(f"--mx-host={domain},{exchange},{preference}")
        return self


class DnsServer:
    """dnsmasq serving *zone* on 127.0.0.1:<port>, UDP and TCP."""

    def __init__(self, zone: Zone, authoritative: bool = True) -> None:
        # not authoritative: a name the zone does not hold is REFUSED (no upstream to ask)
        self.local = ["--local=/#/"] if authoritative else []
        # as root dnsmasq would switch to the user `nobody`; stay who we are
        self.user = [f"--user={pwd.getpwuid(os.geteuid()).pw_name}"] if os.geteuid() == 0 else []
        for attempt in range(3):   # the free TCP port may be taken for UDP: then try another
            try:
                self._start(zone)
                return
            except AssertionError:
                if attempt == 2:
                    raise

    def _start(self, zone: Zone) -> None:
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [DNSMASQ, "--no-daemon", "--conf-file=/dev/null", "--no-resolv", "--no-hosts", "--no-poll",
             *self.local, "--listen-address=127.0.0.1", "--bind-interfaces", f"--port={self.port}",
             "--pid-file=", "--cache-size=0", *self.user, *zone.options],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            wait_for(self._listening, timeout=10, what=f"dnsmasq on port {self.port}")
        except AssertionError:
            self.stop()
            raise

    def _listening(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"dnsmasq exited: {self.process.stderr.read() if self.process.stderr else ''}")
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", self.port)) == 0

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stderr:
            self.process.stderr.close()
