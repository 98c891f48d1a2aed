"""What the CLI prints to a terminal cannot drive the terminal: control characters in a saved
session or a file a tool read are shown as symbols (an OSC title sequence retitled the terminal).
Piped output and --json stay exact."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from pathlib import Path

from tests.conftest import run_cli
from tui_agent.agent.conversation import Conversation, Message
from tui_agent.store.sessions import SessionStore

HOSTILE = "title \x1b]0;pwned\x07 red \x1b[31m bell \x07 c1 \x9b end"


def in_a_terminal(*args: str) -> bytes:
    """Run `llamachat ARGS` with stdout and stderr on a pseudo-terminal; all it wrote."""
    master, slave = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "tui_agent", *args], stdout=slave, stderr=slave,
        stdin=subprocess.DEVNULL, env={**os.environ, "TERM": "xterm-256color"},
    )  # fmt: skip
    os.close(slave)
    output = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        output += chunk
    process.wait(60)
    os.close(master)
    return output


def saved_session(tmp_path: Path) -> tuple[Path, str]:
    config = tmp_path / "c.toml"
    config.write_text(f'[history]\ndb_path = "{tmp_path / "h.db"}"\n')
    store = SessionStore(tmp_path / "h.db")
    conversation = Conversation()
    store.create_session(conversation, "demo", str(tmp_path), HOSTILE)
    session_id = conversation.id
    store.add_message(session_id, Message("user", HOSTILE))
    store.close()
    return config, session_id


def test_history_in_a_terminal_shows_control_characters_as_symbols(tmp_path: Path) -> None:
    config, session_id = saved_session(tmp_path)
    for command in (("show", session_id), ("search", "title"), ("export", session_id), ("list",)):
        shown = in_a_terminal("history", *command, "--config", str(config))
        assert b"\x1b]0;" not in shown and b"\x1b[31m" not in shown and b"\x07" not in shown, (
            command
        )
        assert "␛]0;pwned␇".encode() in shown, command


def test_piped_and_json_output_stay_exact(tmp_path: Path) -> None:
    config, session_id = saved_session(tmp_path)
    piped = run_cli("history", "export", session_id, "--config", str(config))
    assert HOSTILE in piped.stdout, "a file or a pipe gets the text as it was saved"
    listed = run_cli("history", "list", "--json", "--config", str(config))
    assert json.loads(listed.stdout)[0]["title"] == HOSTILE


def test_tools_call_output_in_a_terminal(tmp_path: Path) -> None:
    (tmp_path / "evil.txt").write_text(f"{HOSTILE}\n")
    config = tmp_path / "c.toml"
    config.write_text(f'[tools]\nworkspace_root = "{tmp_path}"\n')
    shown = in_a_terminal(
        "tools", "call", "read_file", '{"path": "evil.txt"}', "--config", str(config)
    )
    assert b"\x1b]0;" not in shown and "␛]0;pwned␇".encode() in shown
