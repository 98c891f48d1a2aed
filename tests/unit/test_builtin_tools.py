"""Built-in tools: behaviour, confinement to the workspace, failures the model can act on."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from tui_agent.config import ToolsConfig
from tui_agent.tools.builtin import BuiltinTools, ToolFailure, preview_change
from tui_agent.tools.workspace import Workspace


@pytest.fixture
def tools(tmp_path: Path) -> BuiltinTools:
    root = tmp_path / "ws"
    (root / "src" / "pkg").mkdir(parents=True)
    (root / "src" / "pkg" / "a.py").write_text("def f():\n    return 1\n# TODO: more\n")
    (root / "README.md").write_text("# Title\nSome text\n")
    (root / ".git").mkdir()
    (root / ".git" / "config").write_text("TODO hidden")
    (root / "bin.dat").write_bytes(b"\0\1\2TODO")
    return BuiltinTools(Workspace.at(root), ToolsConfig(shell_timeout_sec=5))


def test_read_file_with_ranges(tools: BuiltinTools) -> None:
    out = tools.read_file("src/pkg/a.py")
    assert "lines 1-3 of 3" in out and "     2\t    return 1" in out
    assert "TODO" not in tools.read_file("src/pkg/a.py", start_line=1, end_line=2)
    with pytest.raises(ToolFailure, match="past the end"):
        tools.read_file("src/pkg/a.py", start_line=10)
    with pytest.raises(ToolFailure, match="no such file"):
        tools.read_file("nope.txt")
    with pytest.raises(ToolFailure, match="binary"):
        tools.read_file("bin.dat")
    with pytest.raises(ToolFailure, match="directory"):
        tools.read_file("src")


def test_list_glob_grep(tools: BuiltinTools) -> None:
    listing = tools.list_dir()
    assert listing.splitlines()[0].endswith("/") and "README.md  (" in listing
    assert tools.glob("**/*.py") == "src/pkg/a.py"
    assert "no files match" in tools.glob("*.rs")
    found = tools.grep("TODO")
    assert found == "src/pkg/a.py:3: # TODO: more", "skips .git and binary files"
    assert tools.grep("title", ignore_case=True) == "README.md:1: # Title"
    assert tools.grep("TODO", file_glob="*.md").startswith("no matches")
    with pytest.raises(ToolFailure, match="invalid regular expression"):
        tools.grep("(")
    assert tools.grep("TODO", path="./**/*.py") == "src/pkg/a.py:3: # TODO: more"
    assert tools.grep("TODO", path="src/**/*.md").startswith("no matches")
    with pytest.raises(ToolFailure, match="no such file or directory: nowhere"):
        tools.grep("TODO", path="nowhere")


def test_write_and_edit(tools: BuiltinTools) -> None:
    assert tools.write_file("new/dir/b.txt", "hello\n").startswith("created new/dir/b.txt")
    assert tools.write_file("new/dir/b.txt", "hello again\n").startswith("replaced")
    diff = tools.edit_file("src/pkg/a.py", "return 1", "return 2")
    assert "-    return 1" in diff and "+    return 2" in diff
    assert "return 2" in (tools.workspace.root / "src/pkg/a.py").read_text()
    with pytest.raises(ToolFailure, match="not found"):
        tools.edit_file("src/pkg/a.py", "return 99", "x")
    tools.write_file("dup.txt", "a a")
    with pytest.raises(ToolFailure, match="occurs 2 times"):
        tools.edit_file("dup.txt", "a", "b")
    assert (tools.workspace.root / "dup.txt").read_text() == "a a", "a failed edit changes nothing"


def test_preview_shows_the_diff_without_writing(tools: BuiltinTools) -> None:
    diff = preview_change(
        tools, "edit_file", {"path": "README.md", "old_string": "Some", "new_string": "More"}
    )
    assert "-Some text" in diff and "+More text" in diff
    assert "Some text" in (tools.workspace.root / "README.md").read_text()
    created = preview_change(tools, "write_file", {"path": "n.txt", "content": "new\n"})
    assert "+new" in created and not (tools.workspace.root / "n.txt").exists()


@pytest.mark.parametrize("path", ["../outside.txt", "/etc/passwd", "src/../../x", "~/x"])
def test_paths_outside_are_refused(tools: BuiltinTools, path: str) -> None:
    with pytest.raises(ToolFailure, match="outside the workspace"):
        tools.write_file(path, "x")
    with pytest.raises(ToolFailure, match="outside the workspace"):
        tools.read_file(path)


def test_symlink_escapes_are_refused(tools: BuiltinTools, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("secret")
    root = tools.workspace.root
    os.symlink(secret, root / "link.txt")
    os.symlink(tmp_path, root / "linkdir")
    with pytest.raises(ToolFailure, match="outside"):
        tools.read_file("link.txt")
    with pytest.raises(ToolFailure, match="outside"):
        tools.write_file("linkdir/evil.txt", "x")
    assert not (tmp_path / "evil.txt").exists()
    with pytest.raises(ToolFailure, match="outside"):
        tools.edit_file("link.txt", "secret", "changed")
    assert secret.read_text() == "secret"
    assert tools.grep("secret").startswith("no matches"), "grep must not follow links out"


def test_run_shell(tools: BuiltinTools) -> None:
    out = asyncio.run(tools.run_shell("echo hi && pwd && exit 3"))
    assert out.startswith("exit code 3\nhi\n") and str(tools.workspace.root) in out
    with pytest.raises(ToolFailure, match=r"timed out after 0\.3 s"):
        asyncio.run(tools.run_shell("sleep 5", timeout_sec=0.3))


def test_read_file_counts_every_line_and_serves_any_range(tmp_path: Path) -> None:
    root = tmp_path / "big"
    root.mkdir()
    (root / "long.txt").write_text("".join(f"line {n}\n" for n in range(1, 5001)))
    tools = BuiltinTools(Workspace.at(root), ToolsConfig(max_output_chars=2_000))
    first = tools.read_file("long.txt")
    assert first.startswith("long.txt (lines 1-") and " of 5000)" in first
    last_shown = int(first.split("lines 1-")[1].split(" ")[0])
    assert 50 < last_shown < 5000 and len(first) <= 2_000
    assert first.endswith(
        f"…lines 1-{last_shown} of 5000; the file continues, ask for start_line={last_shown + 1}"
    )
    late = tools.read_file("long.txt", start_line=4990)
    assert late.startswith("long.txt (lines 4990-5000 of 5000)") and "  5000\tline 5000" in late
    assert "continues" not in late
    window = tools.read_file("long.txt", start_line=3000, end_line=3002)
    assert window.splitlines()[1:] == [f"  {n}\tline {n}" for n in (3000, 3001, 3002)]
    with pytest.raises(ToolFailure, match="has 5000 lines; start_line 5001 is past the end"):
        tools.read_file("long.txt", start_line=5001)


def test_read_file_odd_files(tmp_path: Path) -> None:
    root = tmp_path / "odd"
    root.mkdir()
    tools = BuiltinTools(Workspace.at(root), ToolsConfig(max_output_chars=1_000))
    (root / "one-line.min.js").write_text("x" * 500_000 + "\nsecond")
    out = tools.read_file("one-line.min.js")
    assert "lines 1-1 of 2" in out and "…[line cut]" in out and len(out) <= 1_000
    (root / "empty.txt").write_text("")
    assert tools.read_file("empty.txt") == "empty.txt is empty (0 lines)"
    (root / "no-newline.txt").write_text("a\r\nb")
    assert tools.read_file("no-newline.txt").splitlines()[1:] == ["     1\ta", "     2\tb"]
    os.mkfifo(root / "pipe")
    with pytest.raises(ToolFailure, match="not a regular file"):
        tools.read_file("pipe")  # would block forever if it were opened for a plain read
    assert tools.grep("x", file_glob="pipe").startswith("no matches")
    (root / "loop").symlink_to(root / "loop")
    with pytest.raises(ToolFailure, match="symlink loop"):
        tools.read_file("loop")
    (root / "sub").mkdir()
    (root / "sub" / "up").symlink_to(root)  # a folder loop: sub/up/sub/up/…
    (root / "ping").symlink_to(root / "pong")
    (root / "pong").symlink_to(root / "ping")
    for pattern in ("**/*", "**/*.txt", "sub/up/**", "loop/*", "p*"):
        tools.glob(pattern)  # finishes, and raises nothing but a ToolFailure
    assert "empty.txt" in tools.glob("**/*.txt")
    assert "no-newline.txt:1: a" in tools.grep("a", file_glob="*.txt")
    assert tools.list_dir("sub") == "up/"


def test_edit_file_keeps_the_whole_of_a_large_file(tmp_path: Path) -> None:
    root = tmp_path / "edit"
    root.mkdir()
    text = "".join(f"row {n}\n" for n in range(20_000))
    (root / "data.txt").write_text(text)
    tools = BuiltinTools(Workspace.at(root), ToolsConfig(max_output_chars=1_000))
    tools.edit_file("data.txt", "row 19999\n", "last row\n")
    assert (root / "data.txt").read_text() == text.replace("row 19999\n", "last row\n")
