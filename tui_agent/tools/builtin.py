"""Built-in tools, served by an in-process MCP server so every tool call takes one path.

File tools are confined to the workspace root; ``run_shell`` runs there with a timeout and an
output cap. Failures raise ``ToolError`` with a message the model can act on.
"""

from __future__ import annotations

import asyncio
import contextlib
import difflib
import os
import re
import shutil
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any, BinaryIO

from pydantic import Field

from tui_agent.config import ToolsConfig
from tui_agent.logfiles import route_python_logging
from tui_agent.tools.workspace import OutsideWorkspaceError, Workspace

READ_ONLY_TOOLS = ("read_file", "list_dir", "glob", "grep")
WRITE_TOOLS = ("write_file", "edit_file")
DANGEROUS_TOOLS = (*WRITE_TOOLS, "run_shell")
FILE_TOOLS = (*READ_ONLY_TOOLS, *WRITE_TOOLS)
# The argument a permission rule's pattern is matched against, per built-in tool.
PRIMARY_ARGUMENT = {name: "path" for name in FILE_TOOLS} | {"run_shell": "command"}
_SKIP_DIRS = {
    ".git",
    ".hg",
    ".svn",
    "node_modules",
    ".venv",
    "venv",
    "__pycache__",
    ".mypy_cache",
    ".ruff_cache",
}
_MAX_MATCHES = 200
_MAX_ENTRIES = 500
_MAX_GREP_BYTES = 5 * 1024 * 1024
# edit_file rewrites the whole file; beyond this it refuses rather than hold it all in memory.
_MAX_EDIT_BYTES = 20 * 1024 * 1024
# read_file reads a line in pieces of this size, so one huge line never fills memory.
_READ_CHUNK = 64 * 1024
# Room for read_file's header and hint inside the gate's output cap.
_HEADER_ROOM = 200


class ToolFailure(Exception):
    """A tool failed in a way the model should hear about (the message is for it)."""


class BuiltinTools:
    def __init__(
        self,
        workspace: Workspace,
        config: ToolsConfig,
        hides: Callable[[Path], bool] = lambda path: False,
    ) -> None:
        self.workspace = workspace
        self.config = config
        # Whether a search or listing must leave a path out (the permission rules guard it).
        self.hides = hides

    def _path(self, path: str) -> Path:
        try:
            return self.workspace.resolve(path)
        except OutsideWorkspaceError as exc:
            raise ToolFailure(str(exc)) from exc

    def _regular_file(self, path: str) -> Path:
        target = self._path(path)
        if not target.exists():
            raise ToolFailure(f"no such file: {path}")
        if target.is_dir():
            raise ToolFailure(f"{path} is a directory; use list_dir")
        return target

    def whole_text(self, path: str) -> tuple[Path, str]:
        """All of a text file, for edits (which rewrite it whole)."""
        target = self._regular_file(path)
        with open_regular(target, path) as file:
            data = file.read(_MAX_EDIT_BYTES + 1)
        if len(data) > _MAX_EDIT_BYTES:
            raise ToolFailure(
                f"{path} is larger than {_MAX_EDIT_BYTES // 2**20} MB; edit it with run_shell"
            )
        if b"\0" in data[:8192]:
            raise ToolFailure(f"{path} is a binary file; only text files can be edited")
        return target, data.decode("utf-8", errors="replace")

    def read_file(self, path: str, start_line: int = 1, end_line: int = 0) -> str:
        """Read a text file; lines are numbered. start_line/end_line (1-based, inclusive) pick a range."""
        target = self._regular_file(path)
        first = max(start_line, 1)
        budget = max(self.config.max_output_chars - _HEADER_ROOM, 80)
        shown: list[str] = []
        used, total, cut = 0, 0, False
        with open_regular(target, path) as file:
            if b"\0" in file.read(8192):
                raise ToolFailure(f"{path} is a binary file; read_file shows text files only")
            file.seek(0)
            for number, head in _lines(file):
                total = number
                if cut or number < first or 0 < end_line < number:
                    continue
                text = head.decode("utf-8", errors="replace").rstrip("\r\n")
                entry = f"{number:>6}\t{text}"
                if used + len(entry) + 1 > budget:
                    if shown:
                        cut = True
                        continue
                    entry = entry[:budget] + " …[line cut]"
                shown.append(entry)
                used += len(entry) + 1
        if total == 0:
            return f"{path} is empty (0 lines)"
        if first > total:
            raise ToolFailure(f"{path} has {total} lines; start_line {start_line} is past the end")
        last = first + len(shown) - 1
        header = f"{path} (lines {first}-{last} of {total})"
        hint = (
            f"\n…lines {first}-{last} of {total}; the file continues, ask for start_line={last + 1}"
            if cut
            else ""
        )
        return header + "\n" + "\n".join(shown) + hint

    def list_dir(self, path: str = ".") -> str:
        """List a directory: sub-directories end with '/', files show their size."""
        target = self._path(path)
        if not target.is_dir():
            raise ToolFailure(f"not a directory: {path}")
        found = sorted(target.iterdir(), key=lambda p: (not p.is_dir(), p.name.lower()))
        entries = [p for p in found if not self.hides(p)]
        lines = [_entry(p) for p in entries[:_MAX_ENTRIES]]
        more = f"\n… and {len(entries) - _MAX_ENTRIES} more" if len(entries) > _MAX_ENTRIES else ""
        listing = "\n".join(lines) + more if lines else f"{path} is empty"
        return listing + _skipped(len(found) - len(entries))

    def glob(self, pattern: str, path: str = ".") -> str:
        """Find files by glob pattern, e.g. '**/*.py', under path."""
        base = self._path(path)
        matches, skipped = [], 0
        try:
            for found in base.glob(pattern):
                try:
                    resolved = self.workspace.resolve(str(found))
                except OutsideWorkspaceError:
                    continue
                if _SKIP_DIRS & set(found.relative_to(base).parts):
                    continue
                if self.hides(found):
                    skipped += 1
                    continue
                matches.append(self.workspace.relative(resolved))
        except (ValueError, NotImplementedError, OSError) as exc:
            raise ToolFailure(f"cannot glob {pattern!r}: {exc}") from exc
        matches.sort()
        shown = matches[:_MAX_ENTRIES]
        more = f"\n… and {len(matches) - _MAX_ENTRIES} more" if len(matches) > _MAX_ENTRIES else ""
        listing = "\n".join(shown) + more if shown else f"no files match {pattern!r}"
        return listing + _skipped(skipped)

    def grep(
        self,
        pattern: Annotated[str, Field(description="regular expression to look for")],
        path: Annotated[str, Field(description="directory or file to search")] = ".",
        file_glob: Annotated[str, Field(description="only files named like this, e.g. *.py")] = "*",
        ignore_case: bool = False,
    ) -> str:
        """Search file contents with a regular expression; prints file:line: text."""
        try:
            regex = re.compile(pattern, re.IGNORECASE if ignore_case else 0)
        except re.error as exc:
            raise ToolFailure(f"invalid regular expression {pattern!r}: {exc}") from exc
        base = self._path(path)
        if not base.exists() and any(c in path for c in "*?["):
            # A pattern given as the path (src/**/*.py): search its folder for its file names.
            parts = Path(path).parts
            cut = next(i for i, part in enumerate(parts) if any(c in part for c in "*?["))
            path = str(Path(*parts[:cut])) if cut else "."
            file_glob = parts[-1] if file_glob == "*" and parts[-1] != "**" else file_glob
            base = self._path(path)
        if not base.exists():
            raise ToolFailure(f"no such file or directory: {path}")
        results: list[str] = []
        skipped = 0
        for file in self._walk(base, file_glob):
            if self.hides(file):
                skipped += 1
                continue
            for number, line in _text_lines(file):
                if regex.search(line):
                    results.append(
                        f"{self.workspace.relative(file)}:{number}: {line.rstrip()[:300]}"
                    )
                    if len(results) >= _MAX_MATCHES:
                        return "\n".join(results) + f"\n… stopped at {_MAX_MATCHES} matches"
        found = "\n".join(results) if results else f"no matches for {pattern!r}"
        return found + _skipped(skipped)

    def _walk(self, base: Path, file_glob: str) -> Iterator[Path]:
        if base.is_file():
            yield base
            return
        for directory, dirs, files in os.walk(base):
            dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIRS)
            for name in sorted(files):
                candidate = Path(directory) / name
                if Path(name).match(file_glob) and not candidate.is_symlink():
                    yield candidate

    def write_file(self, path: str, content: str) -> str:
        """Create or overwrite a text file (parent directories are created)."""
        target = self._path(path)
        if target.is_dir():
            raise ToolFailure(f"{path} is a directory")
        _refuse_hard_links(target, path)
        existed = target.exists()
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content, encoding="utf-8")
        return f"{'replaced' if existed else 'created'} {self.workspace.relative(target)} ({len(content.encode())} bytes)"

    def edit_file(self, path: str, old_string: str, new_string: str) -> str:
        """Replace one exact, unique occurrence of old_string with new_string; returns the diff."""
        target, before = self.whole_text(path)
        _refuse_hard_links(target, path)
        after = apply_edit(before, old_string, new_string, path)
        target.write_text(after, encoding="utf-8")
        return unified_diff(before, after, self.workspace.relative(target))

    async def run_shell(self, command: str, timeout_sec: float = 0) -> str:
        """Run a shell command in the workspace; returns its exit code and output."""
        limit = (
            min(timeout_sec, self.config.shell_timeout_sec)
            if timeout_sec > 0
            else self.config.shell_timeout_sec
        )
        if "\0" in command:
            raise ToolFailure("the command contains a NUL byte, which no shell can run")
        # bash, the shell the permission rules parse commands as (sh may be dash, which
        # reads some constructs differently).
        process = await asyncio.create_subprocess_exec(
            shutil.which("bash") or "/bin/sh",
            "-c",
            command,
            cwd=self.workspace.root,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            stdin=asyncio.subprocess.DEVNULL,
            start_new_session=True,
            env=_without_git_programs(os.environ),
        )
        try:
            output, _ = await asyncio.wait_for(process.communicate(), limit)
        except (TimeoutError, asyncio.CancelledError) as exc:
            _kill_group(process)
            await process.wait()
            if isinstance(exc, asyncio.CancelledError):
                raise
            raise ToolFailure(
                f"command timed out after {limit:g} s and was killed: {command}"
            ) from exc
        text = output.decode("utf-8", errors="replace")
        return f"exit code {process.returncode}\n{text}"


def _refuse_hard_links(target: Path, shown: str) -> None:
    """A file with other hard links is the same file under other names, which may lie outside
    the workspace (the path rules see only this name): writing it would change them all."""
    try:
        links = target.stat().st_nlink
    except FileNotFoundError:
        return
    if links > 1:
        raise ToolFailure(
            f"{shown} has {links} hard links: writing it would also change the same file under"
            " its other names, which may be outside the workspace; copy it to a new file instead"
        )


# Repository settings that make any git command run a program: a .git/config planted in the
# workspace would otherwise run one under a rule such as run_shell(git status*).
_GIT_OVERRIDES = {"core.fsmonitor": "", "core.pager": "cat"}


def _without_git_programs(environ: os._Environ[str] | dict[str, str]) -> dict[str, str]:
    """The environment with git told (GIT_CONFIG_COUNT, git >= 2.31) to ignore those settings;
    a count the user set already is extended, not replaced."""
    env = dict(environ)
    given = env.get("GIT_CONFIG_COUNT", "0")
    count = int(given) if given.isdigit() else 0
    for key, value in _GIT_OVERRIDES.items():
        env[f"GIT_CONFIG_KEY_{count}"] = key
        env[f"GIT_CONFIG_VALUE_{count}"] = value
        count += 1
    env["GIT_CONFIG_COUNT"] = str(count)
    return env


def _text_lines(file: Path) -> list[tuple[int, str]]:
    """Numbered lines of a text file; binary, huge, special or unreadable files give none."""
    try:
        with open_regular(file, str(file)) as handle:
            data = handle.read(_MAX_GREP_BYTES + 1)
        if len(data) > _MAX_GREP_BYTES or b"\0" in data[:8192]:
            return []
        return list(enumerate(data.decode("utf-8").splitlines(), start=1))
    except (UnicodeDecodeError, OSError, ToolFailure):
        return []


def open_regular(path: Path, shown: str) -> BinaryIO:
    """Open a regular file for reading; a FIFO, device or socket is refused without blocking
    (O_NONBLOCK keeps the open itself from waiting on a FIFO with no writer)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
    except OSError as exc:
        raise ToolFailure(f"cannot read {shown}: {exc.strerror}") from exc
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise ToolFailure(f"{shown} is not a regular file (a FIFO, device or socket)")
    return os.fdopen(fd, "rb")


def _lines(file: BinaryIO) -> Iterator[tuple[int, bytes]]:
    """(line number, the line's first chunk) for every line; the rest of a long line is read
    and dropped in chunks, so a huge line costs no more memory than a short one."""
    number, at_start = 0, True
    while chunk := file.readline(_READ_CHUNK):
        if at_start:
            number += 1
            yield number, chunk
        at_start = chunk.endswith(b"\n")


def _entry(path: Path) -> str:
    if path.is_dir():
        return f"{path.name}/"
    try:
        return f"{path.name}  ({path.stat().st_size} bytes)"
    except OSError:  # a broken symlink
        return f"{path.name}  (broken link)"


def _skipped(count: int) -> str:
    paths = "1 path" if count == 1 else f"{count} paths"
    return f"\n({paths} left out: [permissions] rules guard them)" if count else ""


def _kill_group(process: asyncio.subprocess.Process) -> None:
    import signal

    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


def apply_edit(before: str, old_string: str, new_string: str, path: str) -> str:
    if not old_string:
        raise ToolFailure("old_string is empty; to create a file use write_file")
    count = before.count(old_string)
    if count == 0:
        raise ToolFailure(
            f"old_string was not found in {path}; read the file and copy the text exactly"
        )
    if count > 1:
        raise ToolFailure(
            f"old_string occurs {count} times in {path}; include more context to make it unique"
        )
    return before.replace(old_string, new_string, 1)


_NO_NEWLINE = "\\ No newline at end of file\n"


def unified_diff(before: str, after: str, name: str) -> str:
    """The change as `diff -u` and git show it, "\\ No newline at end of file" included: a last
    line without one would otherwise run into the next line of the diff."""
    lines = difflib.unified_diff(
        before.splitlines(keepends=True), after.splitlines(keepends=True), f"a/{name}", f"b/{name}"
    )
    shown = [line if line.endswith("\n") else f"{line}\n{_NO_NEWLINE}" for line in lines]
    return "".join(shown) or "(no change)"


def preview_change(tools: BuiltinTools, name: str, arguments: dict[str, Any]) -> str:
    """The diff a write_file or edit_file call would make, for the permission prompt."""
    if name not in WRITE_TOOLS:
        return ""
    try:
        path = str(arguments.get("path", ""))
        target = tools.workspace.resolve(path)
        before = tools.whole_text(path)[1] if target.exists() else ""
        if name == "write_file":
            after = str(arguments.get("content", ""))
        else:
            after = apply_edit(
                before,
                str(arguments.get("old_string", "")),
                str(arguments.get("new_string", "")),
                path,
            )
        return unified_diff(before, after, tools.workspace.relative(target))
    except (ToolFailure, OutsideWorkspaceError, OSError) as exc:
        return f"(no preview: {exc})"


def build_builtin_server(tools: BuiltinTools) -> Any:
    """An MCPServer exposing the built-in tools with honest read-only/destructive annotations."""
    from mcp.server.mcpserver import MCPServer
    from mcp.server.mcpserver.exceptions import ToolError
    from mcp.types import ToolAnnotations

    route_python_logging()  # before MCPServer(), which would install a stderr handler otherwise
    server = MCPServer("llamachat-builtin")
    read_only = ToolAnnotations(read_only_hint=True, destructive_hint=False)
    destructive = ToolAnnotations(read_only_hint=False, destructive_hint=True)

    def wrap(fn: Any) -> Any:
        """Turn ToolFailure into the SDK's ToolError, whose message reaches the client."""
        import functools
        import inspect

        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def run_async(*args: Any, **kwargs: Any) -> Any:
                try:
                    return await fn(*args, **kwargs)
                except ToolFailure as exc:
                    raise ToolError(str(exc)) from exc

            return run_async

        @functools.wraps(fn)
        def run(*args: Any, **kwargs: Any) -> Any:
            try:
                return fn(*args, **kwargs)
            except ToolFailure as exc:
                raise ToolError(str(exc)) from exc

        return run

    for name in READ_ONLY_TOOLS:
        server.tool(name=name, annotations=read_only)(wrap(getattr(tools, name)))
    for name in DANGEROUS_TOOLS:
        server.tool(name=name, annotations=destructive)(wrap(getattr(tools, name)))
    return server
