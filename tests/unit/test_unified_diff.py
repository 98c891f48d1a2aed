"""The diff shown for a write or an edit (permission prompt, tool result, what the model reads)
is a real unified diff: `patch` turns the old text into the new, a missing last newline included
(it used to run the last line into the next: "-old line+new line")."""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from tui_agent.tools.builtin import unified_diff

LINES = st.lists(st.sampled_from(["alpha", "beta", "gamma", "", "  indented", "délta"]), max_size=6)


def text(lines: list[str], newline_at_end: bool) -> str:
    return "\n".join(lines) + ("\n" if newline_at_end and lines else "")


def test_a_missing_last_newline_is_said_as_diff_says_it() -> None:
    diff = unified_diff("a\nold line", "a\nnew line", "f.txt")
    assert (
        "-old line\n\\ No newline at end of file\n+new line\n\\ No newline at end of file\n" in diff
    )
    assert "old line+new line" not in diff


@settings(max_examples=40, deadline=None)
@given(LINES, st.booleans(), LINES, st.booleans())
def test_patch_turns_the_old_text_into_the_new(
    old: list[str], old_end: bool, new: list[str], new_end: bool
) -> None:
    before, after = text(old, old_end), text(new, new_end)
    diff = unified_diff(before, after, "f.txt")
    if before == after:
        assert diff == "(no change)"
        return
    with tempfile.TemporaryDirectory() as folder:
        target = Path(folder) / "f.txt"
        target.write_bytes(before.encode())
        result = subprocess.run(
            ["patch", "-p1", "-s", "-f", "--no-backup-if-mismatch"],
            cwd=folder, input=diff.encode(), capture_output=True,
        )  # fmt: skip
        assert result.returncode == 0, (diff, result.stdout, result.stderr)
        assert target.read_bytes().decode() == after
