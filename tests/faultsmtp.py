"""A fault-injecting SMTP server speaking raw SMTP lines, written apart from tests/smtpserver.py.

It plays a relay that misbehaves the way real ones do, deterministically:

    server = FaultServer().start()
    server.inject("EOD", "drop", recipient="user5@example.net")      # dot accepted, then no reply
    server.inject("greeting", "reply", code=421, times=2)              # the next two greetings say 421
    server.inject("RCPT", "stall", seconds=3)                          # reply 3 s late, then as usual
    server.mix = FaultMix(seed=15, rate=0.06)                          # a random mix per transaction
    ...
    server.received["user5@example.net"]      # copies whose final dot the server accepted

Stages: ``greeting``, ``MAIL``, ``RCPT``, ``DATA`` (the reply to DATA, before 354) and ``EOD``
(the reply after the final dot). Actions: ``reply`` (the given code; a 421 then closes the
connection), ``drop`` (close without a reply), ``reset`` (close with a TCP RST), ``stall``
(answer *seconds* late, or close then with ``then="drop"``).

"Received" means the server accepted the final dot: a drop, reset or stall at EOD counts as
received (the message is there, only the reply is lost); a 4xx/5xx reply at EOD does not.
The mix decides per (recipient, n-th transaction for that recipient) from the seed, so the
faults a recipient meets do not depend on which connection or thread carried it.
"""

from __future__ import annotations

import random
import re
import socket
import socketserver
import struct
import threading
from collections import Counter
from dataclasses import dataclass, field

STAGES = ("greeting", "MAIL", "RCPT", "DATA", "EOD")
ACTIONS = ("reply", "drop", "reset", "stall")
_ADDRESS = re.compile(rb"<([^>]*)>")
_DEFAULT_TEXT = {421: "4.3.2 service not available, closing channel", 451: "4.3.0 local error, try later",
                 452: "4.3.1 insufficient system storage", 450: "4.2.1 mailbox busy",
                 550: "5.1.1 mailbox unavailable", 554: "5.6.0 transaction failed", 552: "5.3.4 message too big"}


@dataclass
class Fault:
    """One injected behaviour at a stage; *times* None means every time it matches."""

    stage: str
    action: str
    code: int = 0
    text: str = ""
    seconds: float = 0.0
    then: str = "reply"            # after a stall: "reply" as usual, or "drop"
    recipient: str | None = None
    times: int | None = 1
    after: int = 0                 # active once the server has received this many messages
    fired: int = 0

    def __post_init__(self) -> None:
        assert self.stage in STAGES and self.action in ACTIONS, (self.stage, self.action)

    def line(self) -> bytes:
        return f"{self.code} {self.text or _DEFAULT_TEXT.get(self.code, 'injected')}\r\n".encode()


# (weight, stage, action, code, then): the random mix, per transaction that meets a fault
MIX_TABLE: tuple[tuple[int, str, str, int, str], ...] = (
    (10, "MAIL", "reply", 421, ""),        # 421 mid-session: the client reconnects
    (6, "MAIL", "drop", 0, ""),            # connection lost before anything was sent
    (12, "RCPT", "reply", 451, ""),        # greylisting
    (6, "RCPT", "reply", 550, ""),         # unknown user: a hard bounce
    (6, "RCPT", "reset", 0, ""),
    (4, "RCPT", "stall", 0, "reply"),      # past the command timeout
    (8, "DATA", "reply", 451, ""),
    (6, "DATA", "drop", 0, ""),            # drop before the data
    (8, "EOD", "reply", 452, ""),          # refused after the data: not received
    (4, "EOD", "reply", 554, ""),          # refused after the data, permanently (5.6.0: a policy pause)
    (14, "EOD", "drop", 0, ""),            # dot accepted, connection dropped before the reply
    (8, "EOD", "reset", 0, ""),            # dot accepted, then RST
    (4, "EOD", "stall", 0, "reply"),       # dot accepted, 250 later than the command timeout
)


@dataclass
class FaultMix:
    """A random fault for a share *rate* of transactions, drawn from the seed per recipient and attempt."""

    seed: int
    rate: float = 0.05
    stall_seconds: float = 2.0
    greeting_rate: float = 0.05    # share of connections greeted with 421 (by connection number)
    table: tuple[tuple[int, str, str, int, str], ...] = MIX_TABLE

    def pick(self, recipient: str, attempt: int) -> Fault | None:
        rng = random.Random(f"{self.seed}|{recipient}|{attempt}")
        if rng.random() >= self.rate:
            return None
        weights = [row[0] for row in self.table]
        _, stage, action, code, then = rng.choices(self.table, weights=weights)[0]
        return Fault(stage, action, code=code, seconds=self.stall_seconds if action == "stall" else 0.0,
                     then=then or "reply", recipient=recipient)

    def greeting(self, number: int) -> Fault | None:
        rng = random.Random(f"{self.seed}|greeting|{number}")
        if number > 1 and rng.random() < self.greeting_rate:
            return Fault("greeting", "reply", code=421)
        return None


@dataclass
class Stats:
    received: Counter = field(default_factory=Counter)      # final dots accepted, per recipient
    rcpt: Counter = field(default_factory=Counter)          # RCPT commands read, per recipient
    fired: Counter = field(default_factory=Counter)         # (stage, action) of faults that fired
    connections: int = 0


class _Closed(Exception):
    """The handler closed (or lost) the connection: end the session."""


class _Session(socketserver.BaseRequestHandler):
    server: "_TCPServer"

    def setup(self) -> None:
        self.buf = b""
        self.sock: socket.socket = self.request
        self.sock.settimeout(120)
        # pipelined replies go out at once, not held by Nagle until the client's delayed ACK
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    # -- raw I/O --------------------------------------------------------------------------
    def _fill(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise _Closed()
        self.buf += chunk

    def readline(self) -> bytes:
        while b"\r\n" not in self.buf:
            self._fill()
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line

    def read_data(self) -> bytes:
        """The message data up to the final dot (not unstuffed: only its arrival matters here)."""
        if self.buf.startswith(b".\r\n"):
            self.buf = self.buf[3:]
            return b""
        start = 0
        while True:
            end = self.buf.find(b"\r\n.\r\n", start)
            if end >= 0:
                data, self.buf = self.buf[:end + 2], self.buf[end + 5:]
                return data
            start = max(0, len(self.buf) - 4)
            self._fill()

    def write(self, data: bytes) -> None:
        try:
            self.sock.sendall(data)
        except OSError:
            raise _Closed() from None

    def peek_recipient(self) -> str | None:
        """The RCPT TO address already sent (pipelined) after the MAIL being read, if it is here."""
        try:
            self.sock.setblocking(False)
            try:
                chunk = self.sock.recv(65536)
                if chunk:
                    self.buf += chunk
            except (BlockingIOError, InterruptedError):
                pass
        finally:
            self.sock.settimeout(120)
        for line in self.buf.split(b"\r\n"):
            if line[:8].upper() == b"RCPT TO:":
                return _address(line)
        return None

    # -- faults ---------------------------------------------------------------------------
    def close(self, rst: bool = False) -> None:
        if rst:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        else:
            try:
                self.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.sock.close()
        raise _Closed()

    def answer(self, stage: str, normal: bytes, fault: Fault | None) -> bool:
        """Reply *normal* or apply *fault*; False when the fault refused (a 4xx/5xx reply was sent)."""
        if fault is None:
            self.write(normal)
            return True
        self.server.owner.note(fault)
        if fault.action == "reply":
            self.write(fault.line())
            if fault.code == 421:
                self.close()
            return False
        if fault.action in ("drop", "reset"):
            self.close(rst=fault.action == "reset")
        # stall
        if self.server.owner.stopping.wait(fault.seconds) or fault.then == "drop":
            self.close()
        self.write(normal)
        return True

    # -- the session ----------------------------------------------------------------------
    def handle(self) -> None:
        owner = self.server.owner
        number = owner.connected()
        try:
            if not self.answer("greeting", b"220 fault.test ESMTP ready\r\n", owner.fault("greeting", None, number)):
                return
            self.session()
        except (_Closed, OSError):
            pass
        finally:
            try:
                self.sock.close()
            except OSError:
                pass

    def session(self) -> None:
        owner = self.server.owner
        sender: str | None = None
        recipients: list[str] = []
        pending: Fault | None = None           # the mix's fault for this transaction
        keyed: str | None = None               # the recipient this transaction was counted for
        while True:
            line = self.readline()
            verb = line[:4].upper()
            if verb in (b"EHLO", b"HELO"):
                sender, recipients, pending, keyed = None, [], None, None
                if verb == b"HELO":
                    self.write(b"250 fault.test\r\n")
                else:
                    extensions = ["fault.test", "8BITMIME", "SIZE 52428800"]
                    if owner.pipelining:
                        extensions.append("PIPELINING")
                    self.write("".join(f"250{'-' if i < len(extensions) - 1 else ' '}{e}\r\n"
                                       for i, e in enumerate(extensions)).encode())
            elif verb == b"MAIL":
                recipients, pending, keyed = [], None, None
                peeked = self.peek_recipient()
                if peeked:
                    pending, keyed = owner.transaction(peeked), peeked
                fault = owner.fault("MAIL", peeked, 0) or _at(pending, "MAIL")
                if self.answer("MAIL", b"250 2.1.0 ok\r\n", fault):
                    sender = _address(line)
            elif verb == b"RCPT":
                rcpt = _address(line) or ""
                owner.saw_rcpt(rcpt)
                if sender is None:
                    self.write(b"503 5.5.1 MAIL first\r\n")
                    continue
                if keyed != rcpt:
                    pending, keyed = owner.transaction(rcpt), rcpt
                fault = owner.fault("RCPT", rcpt, 0) or _at(pending, "RCPT")
                if self.answer("RCPT", b"250 2.1.5 ok\r\n", fault):
                    recipients.append(rcpt)
            elif verb == b"DATA":
                if not recipients:
                    self.write(b"503 5.5.1 no valid recipients\r\n")
                    continue
                fault = owner.fault("DATA", recipients[0], 0) or _at(pending, "DATA")
                if not self.answer("DATA", b"354 end data with <CR><LF>.<CR><LF>\r\n", fault):
                    continue
                self.read_data()
                fault = owner.fault("EOD", recipients[0], 0) or _at(pending, "EOD")
                if fault is None or fault.action != "reply":
                    owner.accepted(recipients)     # the dot is taken: whatever happens next, it is here
                self.answer("EOD", b"250 2.0.0 queued\r\n", fault)
                sender, recipients, pending, keyed = None, [], None, None
            elif verb == b"RSET":
                sender, recipients, pending, keyed = None, [], None, None
                self.write(b"250 2.0.0 ok\r\n")
            elif verb == b"NOOP":
                self.write(b"250 2.0.0 ok\r\n")
            elif verb == b"QUIT":
                self.write(b"221 2.0.0 bye\r\n")
                self.close()
            else:
                self.write(b"502 5.5.2 command not recognised\r\n")


def _address(line: bytes) -> str | None:
    match = _ADDRESS.search(line)
    return match.group(1).decode("utf-8", "replace").lower() if match else None


def _at(fault: Fault | None, stage: str) -> Fault | None:
    return fault if fault is not None and fault.stage == stage else None


class _TCPServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64
    owner: "FaultServer"


class FaultServer:
    """The server: start() on a free loopback port, inject faults, read `received`, stop()."""

    def __init__(self, *, pipelining: bool = True) -> None:
        self.pipelining = pipelining
        self.faults: list[Fault] = []
        self.mix: FaultMix | None = None
        self.stats = Stats()
        self.attempts: Counter = Counter()   # transactions begun per recipient (the mix's key)
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self._server: _TCPServer | None = None
        self._thread: threading.Thread | None = None
        self.host, self.port = "127.0.0.1", 0

    # -- control --------------------------------------------------------------------------
    def start(self) -> "FaultServer":
        self._server = _TCPServer((self.host, 0), _Session)
        self._server.owner = self
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="faultsmtp", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def inject(self, stage: str, action: str, *, code: int = 0, text: str = "", seconds: float = 0.0,
               then: str = "reply", recipient: str | None = None, times: int | None = 1, after: int = 0) -> Fault:
        fault = Fault(stage, action, code=code, text=text, seconds=seconds, then=then,
                      recipient=recipient.lower() if recipient else None, times=times, after=after)
        with self.lock:
            self.faults.append(fault)
        return fault

    @property
    def received(self) -> Counter:
        return self.stats.received

    @property
    def fired(self) -> Counter:
        return self.stats.fired

    # -- called by sessions ---------------------------------------------------------------
    def connected(self) -> int:
        with self.lock:
            self.stats.connections += 1
            return self.stats.connections

    def transaction(self, recipient: str) -> Fault | None:
        """A new transaction for *recipient*: the mix's fault for it, if any."""
        with self.lock:
            self.attempts[recipient] += 1
            attempt = self.attempts[recipient]
        return self.mix.pick(recipient, attempt) if self.mix else None

    def saw_rcpt(self, recipient: str) -> None:
        with self.lock:
            self.stats.rcpt[recipient] += 1

    def fault(self, stage: str, recipient: str | None, connection: int) -> Fault | None:
        """The first injected fault matching now (using up one of its times), else the mix's greeting."""
        with self.lock:
            total = sum(self.stats.received.values())
            for fault in self.faults:
                if fault.stage != stage or (fault.times is not None and fault.fired >= fault.times):
                    continue
                if fault.recipient is not None and fault.recipient != recipient:
                    continue
                if total < fault.after:
                    continue
                fault.fired += 1
                return fault
        if stage == "greeting" and self.mix is not None:
            return self.mix.greeting(connection)
        return None

    def note(self, fault: Fault) -> None:
        with self.lock:
            self.stats.fired[(fault.stage, fault.action if fault.action != "reply" else fault.code)] += 1

    def accepted(self, recipients: list[str]) -> None:
        with self.lock:
            self.stats.received.update(recipients)
