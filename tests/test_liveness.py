"""Recovery sees death (STANDARDS G7): a zombie is dead, a claimant on another host lives by its heartbeat."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta

from mailer import liveness
from mailer.models import Lease, utcnow


def test_a_zombie_is_dead_a_running_process_alive_G7():
    """A child that exited but was not reaped (state Z in /proc/PID/stat) counts as dead."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert liveness.pid_alive(child.pid)
        os.kill(child.pid, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            with open(f"/proc/{child.pid}/stat", "rb") as stat:
                if stat.read().rsplit(b")", 1)[1].split()[0] == b"Z":
                    break
            time.sleep(0.02)
        os.kill(child.pid, 0)                                   # still there for kill(0): a zombie
        assert not liveness.pid_alive(child.pid)
        assert not liveness.claimant_alive(f"{os.uname().nodename}:{child.pid}", utcnow(), {})
    finally:
        child.wait()
    assert not liveness.pid_alive(child.pid)


def test_other_host_claims_live_by_heartbeat_G7(db):
    """Another host's claim lives while its heartbeat is fresh and is dead 90 s after the last beat,
    whatever its rows did; one without any heartbeat falls back to 15 minutes of silence."""
    beat = liveness.Heartbeat(db, "elsewhere.example:4242").start()
    try:
        beats = liveness.beats(db)
        assert set(beats) == {"elsewhere.example:4242"}
        now = utcnow()
        assert liveness.claimant_alive("elsewhere.example:4242", None, beats, now)
        assert not liveness.claimant_alive("elsewhere.example:4242", now, beats, now + timedelta(seconds=91))
        assert liveness.claimant_alive("old.example:1", now - timedelta(minutes=14), beats, now)
        assert not liveness.claimant_alive("old.example:1", now - timedelta(minutes=16), beats, now)
    finally:
        beat.stop()
    with db.session() as session:
        assert session.query(Lease).filter(Lease.name.startswith(liveness.PREFIX)).count() == 0
