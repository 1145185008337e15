"""The README's "Your own newsletter" section, run literally: every shell block, in order, in one
bash, in an empty home folder, against a real SMTP server (aiosmtpd). Only the relay's port is
changed (to the one the test server got), so the README cannot drift from the program."""

from __future__ import annotations

import os
import re
import subprocess
from email import message_from_bytes, policy
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.smtpserver import SMTPServer

pytestmark = pytest.mark.slow
SECTION = "## Your own newsletter"


def section_blocks() -> list[str]:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    start = readme.index(SECTION)
    end = readme.index("\n## ", start + len(SECTION))
    return re.findall(r"```sh\n(.*?)```", readme[start:end], flags=re.S)


def test_the_section_has_the_steps_a_new_group_needs():
    script = "".join(section_blocks())
    for step in ("mailer init", "mailer lists add", "mailer subscribers import", "mailer new-issue",
                 "mailer compose", "mailer preview", "--to ", "mailer schedule", "mailer scheduler --once",
                 "mailer worker --until-idle"):
        assert step in script, step


def test_following_the_readme_literally_sends_the_test_message_through_smtp(tmp_path: Path):
    blocks = section_blocks()
    script = "set -euo pipefail\n" + "\n".join(blocks)
    home = tmp_path / "home"
    home.mkdir()
    with SMTPServer() as server:
        assert "port = 2525" in script
        script = script.replace("port = 2525", f"port = {server.port}")
        env = {k: v for k, v in os.environ.items() if not k.startswith("MAILER_")}
        env.update(HOME=str(home), PATH=os.environ.get("PATH", "/usr/bin:/bin"))
        done = subprocess.run(["bash", "-c", script], cwd=REPO, env=env, capture_output=True, text=True,
                              timeout=300)
        assert done.returncode == 0, f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
        assert "Traceback" not in done.stderr
        [message] = server.messages
    project = home / "riverside-news"
    assert message.rcpt_tos == ["you@riverside.example"]
    mail = message_from_bytes(message.data, policy=policy.default)
    assert mail["From"] == "Riverside Solidarity Network <news@riverside.example>"
    assert "https://news.riverside.example/" in mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert (project / "secrets.toml").stat().st_mode & 0o077 == 0
    assert (project / "build" / "december" / "index.html").is_file()
    out = done.stdout
    assert "news" in out and "Riverside News" in out                       # mailer lists
    assert re.search(r"scheduled \d+: .*december to news", out), out        # mailer schedule
    assert "no scheduler is running" in done.stderr                         # the honest warning
    # the scheduler ran once: the plan is tomorrow's, so nothing else left through the relay
    assert len(server.messages) == 1
