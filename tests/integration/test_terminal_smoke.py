"""The real `llamachat` in a pseudo-terminal, as a user starts it: launch on the demo model, a
prompt and its reply, Esc during a second reply, quit. Exit status 0, no traceback on the
terminal, and the conversation in the history afterwards."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import select
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest

from tests.conftest import run_cli

pytestmark = pytest.mark.model


class Terminal:
    def __init__(self, argv: list[str], cwd: Path) -> None:
        self.master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 110, 0, 0))
        env = {**os.environ, "TERM": "xterm-256color"}
        self.process = subprocess.Popen(
            argv, stdin=slave, stdout=slave, stderr=slave, env=env, cwd=cwd, start_new_session=True
        )
        os.close(slave)
        self.screen = b""

    def wait_for(self, text: bytes, since: int = 0, timeout: float = 60) -> int:
        """Read until ``text`` shows after offset ``since``; returns where the output ends."""
        deadline = time.monotonic() + timeout
        while text not in self.screen[since:]:
            assert time.monotonic() < deadline, f"{text!r} never showed: {self.screen[-2000:]!r}"
            readable, _, _ = select.select([self.master], [], [], 0.1)
            if readable:
                try:
                    self.screen += os.read(self.master, 65536)
                except OSError:  # the app exited and closed the terminal
                    break
        return len(self.screen)

    def type(self, keys: bytes) -> int:
        mark = len(self.screen)
        os.write(self.master, keys)
        return mark

    def drain(self) -> None:
        while select.select([self.master], [], [], 0.2)[0]:
            try:
                chunk = os.read(self.master, 65536)
            except OSError:
                return
            if not chunk:
                return
            self.screen += chunk


def test_launch_prompt_escape_quit(tmp_path: Path) -> None:
    terminal = Terminal([sys.executable, "-m", "tui_agent"], tmp_path)
    try:
        terminal.wait_for(b"ready")
        mark = terminal.type(b"Say hello.\r")
        terminal.wait_for(b"tok/s", since=mark)  # the status line's speed: a reply finished
        mark = terminal.type(b"Write a long story about the sea, with many chapters.\r")
        terminal.wait_for(b"generating", since=mark)
        mark = terminal.type(b"\x1b")  # Esc
        terminal.wait_for(b"ready", since=mark, timeout=10)
        terminal.type(b"\x11")  # Ctrl+Q
        assert terminal.process.wait(20) == 0
        terminal.drain()
    finally:
        if terminal.process.poll() is None:
            terminal.process.kill()
    assert b"Traceback" not in terminal.screen
    listed = run_cli("history", "list", "--json")
    sessions = json.loads(listed.stdout)
    assert len(sessions) == 1 and sessions[0]["title"] == "Say hello."
    assert sessions[0]["message_count"] >= 3, "both prompts and the first reply were saved"
