"""A real Dovecot (IMAP and POP3 over TLS) in a temporary folder, for the bounce-mailbox tests.

Implicit TLS on `imaps_port` and `pop3s_port`, STARTTLS (required before a login) on `imap_port`
and `pop3_port`. Its own dovecot.conf: base_dir and logs in the folder, one passwd-file user whose Maildir the
test writes mail into (as a local delivery agent would), a self-signed certificate made with the
openssl command for 127.0.0.1, and free loopback ports. As root, the login processes run as
`dovenull`, the internal ones as `dovecot` and the mail user as `mail` (Dovecot refuses root);
as another user everything runs as that user.
"""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

from tests.helpers import free_port



def available() -> bool:
    return bool(shutil.which("dovecot") and shutil.which("openssl")
                and Path("/usr/lib/dovecot/imap").exists() and Path("/usr/lib/dovecot/pop3").exists())


def _user(name: str) -> pwd.struct_passwd:
    return pwd.getpwnam(name)


def _alive(pid: int) -> bool:
    """*pid* runs (a zombie left for an init that does not reap is not running)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


class Account:
    """One mail user of the server: its Maildir, and its URLs for `mailer bounces`."""

    def __init__(self, server: "DovecotServer", name: str, password: str) -> None:
        self.server, self.name, self.password = server, name, password
        self.extra = ""     # passwd-file extra fields (userdb_* settings of this user)
        self.taken = False
        self.home = server.dir / "home" / name
        self.maildir = self.home / "Maildir"

    def deliver(self, name: str, data: bytes) -> Path:
        """Put one mail in new/ as a delivery agent does (written in tmp/, then renamed)."""
        tmp = self.maildir / "tmp" / name
        tmp.write_bytes(data)
        self.server.own(tmp)
        target = self.maildir / "new" / name
        os.rename(tmp, target)
        return target

    def url(self, scheme: str, folder: str = "") -> str:
        port = {"imaps": self.server.imaps_port, "pop3s": self.server.pop3s_port,
                "imap": self.server.imap_port, "pop3": self.server.pop3_port}[scheme]
        return f"{scheme}://{self.name}@127.0.0.1:{port}" + (f"/{folder}" if folder else "")


class DovecotServer:
    """`start()` it, `add_account()`, write mail with `deliver()`, then talk IMAP and POP3 over TLS."""

    def __init__(self, accounts: int = 40) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="mailer-dovecot-"))
        os.chmod(self.dir, 0o755)           # the mail and login users must reach their files
        self.imaps_port, self.pop3s_port = free_port(), free_port()
        self.imap_port, self.pop3_port = free_port(), free_port()     # STARTTLS before any login
        self.ca_file = self.dir / "cert.pem"
        self.accounts = [Account(self, f"bounces{i}", f"s3cret-pass-{i}") for i in range(1, accounts + 1)]
        for old in self.accounts[-4:]:
            old.extra = "userdb_imap_capability=IMAP4rev1"
        if os.geteuid() == 0:
            self.login_user, self.internal_user, self.mail_user = "dovenull", "dovecot", _user("mail")
        else:
            me = _user(pwd.getpwuid(os.geteuid()).pw_name)
            self.login_user = self.internal_user = me.pw_name
            self.mail_user = me
        self.process_pid: int | None = None

    def add_account(self, *, old_imap: bool = False) -> Account:
        """The next unused mail user, with an empty Maildir (all are in the passwd file from the start).

        With *old_imap*, one of the users whose IMAP server announces IMAP4rev1 alone after the
        login (no MOVE, no UIDPLUS), as older servers do.
        """
        pool = [a for a in self.accounts if bool(a.extra) == old_imap and not a.taken]
        if not pool:
            raise RuntimeError("no account left; start the server with more")
        pool[0].taken = True
        return pool[0]

    def own(self, path: Path) -> None:
        os.chown(path, self.mail_user.pw_uid, self.mail_user.pw_gid)

    def _config(self) -> str:
        d = self.dir
        return f"""
base_dir = {d}/run
state_dir = {d}/state
instance_name = mailer-test-{uuid.uuid4().hex[:8]}
protocols = imap pop3
listen = 127.0.0.1
log_path = {d}/dovecot.log
default_internal_user = {self.internal_user}
default_internal_group = {grp.getgrgid(_user(self.internal_user).pw_gid).gr_name}
default_login_user = {self.login_user}
first_valid_uid = 1
ssl = required
ssl_cert = <{d}/cert.pem
ssl_key = <{d}/key.pem
ssl_dh =
disable_plaintext_auth = yes
auth_mechanisms = plain
auth_failure_delay = 0
passdb {{
  driver = passwd-file
  args = scheme=PLAIN {d}/passwd
}}
userdb {{
  driver = passwd-file
  args = {d}/passwd
}}
mail_location = maildir:~/Maildir
pop3_uidl_format = %08Xu%08Xv
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.imap_port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {self.imaps_port}
    ssl = yes
  }}
}}
service pop3-login {{
  chroot =
  inet_listener pop3 {{
    address = 127.0.0.1
    port = {self.pop3_port}
  }}
  inet_listener pop3s {{
    address = 127.0.0.1
    port = {self.pop3s_port}
    ssl = yes
  }}
}}
service anvil {{
  chroot =
}}
"""

    def start(self) -> "DovecotServer":
        d = self.dir
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                        "-keyout", str(d / "key.pem"), "-out", str(d / "cert.pem"), "-subj", "/CN=localhost",
                        "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                       check=True, capture_output=True)
        (d / "run").mkdir()
        (d / "state").mkdir()
        uid, gid = self.mail_user.pw_uid, self.mail_user.pw_gid
        (d / "passwd").write_text("".join(f"{a.name}:{{PLAIN}}{a.password}:{uid}:{gid}::{a.home}::{a.extra}\n"
                                          for a in self.accounts))
        for account in self.accounts:
            for sub in ("new", "cur", "tmp"):
                (account.maildir / sub).mkdir(parents=True)
        for path in [d / "home", *(d / "home").rglob("*")]:
            self.own(path)
        (d / "dovecot.conf").write_text(self._config())
        with open(d / "start.log", "wb") as out:   # the daemon keeps its output open: no pipe
            done = subprocess.run(["dovecot", "-c", str(d / "dovecot.conf")], stdout=out, stderr=out)
        if done.returncode:
            raise RuntimeError(f"dovecot did not start: {(d / 'start.log').read_text(errors='replace')}")
        deadline = time.monotonic() + 20
        pid_file = d / "run" / "master.pid"
        while not pid_file.exists() or not pid_file.read_text().strip():
            if time.monotonic() > deadline:
                raise RuntimeError(f"dovecot wrote no pid: {self.log()}")
            time.sleep(0.05)
        self.process_pid = int(pid_file.read_text().split()[0])
        for port in (self.imaps_port, self.pop3s_port, self.imap_port, self.pop3_port):
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"dovecot did not listen on {port}: {self.log()}") from None
                    time.sleep(0.05)
        return self

    def log(self) -> str:
        path = self.dir / "dovecot.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def stop(self) -> None:
        if self.process_pid:
            try:
                os.kill(self.process_pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and _alive(self.process_pid):
                time.sleep(0.05)
        shutil.rmtree(self.dir, ignore_errors=True)
