"""Saved model states on disk, so a session resumed in a new process is not read again.

One directory per model identity under the cache dir (the GGUF file with its size and time, the
context size and layout, llama-cpp-python's version: a state only fits the build and the context
that wrote it), one file per saved state::

    MAGIC | format (u32) | header length (u32) | header (JSON) | tokens (int32 LE) | state

The header repeats the identity (a file that lands in another directory is refused), names the
session it was saved for and holds the CRC-32 of tokens and state. A file that does not check
out — cut short, corrupt, of another identity, from a newer llamachat — is removed and the
prompt is read again: never a wrong answer, never a crash. A background thread writes files
under a temporary name and renames them, so saving never holds up a prompt; over the budget,
the least recently used go first.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import hashlib
import json
import logging
import os
import queue
import struct
import threading
import time
import zlib
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import platformdirs

log = logging.getLogger(__name__)

MAGIC = b"llamachat-state\n"
FORMAT = 1
SUFFIX = ".state"
_PREAMBLE = struct.Struct("<II")
# Temporary files left by a process that was killed mid-write are removed after this long.
_STALE_TEMP_SECONDS = 3600.0


class BadStateFile(Exception):
    """A file that is not a usable saved state (its reason in the message)."""


def states_root() -> Path:
    return platformdirs.user_cache_path("llamachat") / "states"


def identity_key(identity: dict[str, Any]) -> str:
    text = json.dumps(identity, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


@dataclass(frozen=True)
class StateFile:
    path: Path
    tokens: tuple[int, ...]
    file_size: int
    session: str
    identity: dict[str, Any]
    saved_at: float


def _tokens_bytes(tokens: tuple[int, ...]) -> bytes:
    return struct.pack(f"<{len(tokens)}i", *tokens)


def write_state(
    path: Path,
    identity: dict[str, Any],
    tokens: tuple[int, ...],
    data: Any,
    size: int,
    session: str,
    open_temp: Callable[[Path], IO[bytes]],
) -> None:
    """Write one state file atomically: whole under its name, or not there at all."""
    token_bytes = _tokens_bytes(tokens)
    state = memoryview(data).cast("B")[:size]
    header = json.dumps(
        {
            "identity": identity,
            "session": session,
            "tokens": len(tokens),
            "state_bytes": size,
            "crc32": zlib.crc32(state, zlib.crc32(token_bytes)),
            "saved_at": time.time(),
        }
    ).encode()
    temp = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        with open_temp(temp) as out:
            out.write(MAGIC + _PREAMBLE.pack(FORMAT, len(header)) + header + token_bytes)
            out.write(state)
            # Written out now, while the user reads the reply, rather than by the kernel at some
            # later moment, maybe while a prompt is being evaluated.
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            temp.unlink()
        raise


def read_header(path: Path) -> tuple[StateFile, int, dict[str, Any]]:
    """A state file's description, the offset of its state bytes and its header; BadStateFile
    when it is not one this llamachat can use."""
    try:
        with open(path, "rb") as source:
            size = os.fstat(source.fileno()).st_size
            start = source.read(len(MAGIC) + _PREAMBLE.size)
            if len(start) < len(MAGIC) + _PREAMBLE.size or not start.startswith(MAGIC):
                raise BadStateFile("not a llamachat state file")
            version, header_length = _PREAMBLE.unpack(start[len(MAGIC) :])
            if version > FORMAT:
                raise BadStateFile(f"written by a newer llamachat (format {version})")
            header = json.loads(source.read(header_length))
            count = int(header["tokens"])
            token_bytes = source.read(4 * count)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise BadStateFile(f"unreadable: {exc}") from None
    offset = len(start) + header_length + 4 * count
    if len(token_bytes) != 4 * count or size != offset + int(header["state_bytes"]):
        raise BadStateFile("cut short")
    tokens = struct.unpack(f"<{count}i", token_bytes)
    entry = StateFile(
        path,
        tokens,
        size,
        str(header.get("session", "")),
        dict(header["identity"]),
        float(header.get("saved_at", 0.0)),
    )
    return entry, offset, header


def read_state(entry: StateFile) -> tuple[Any, int]:
    """The state bytes of a file (a ctypes array for llama.cpp) and their count, checked."""
    _, offset, header = read_header(entry.path)
    size = int(header["state_bytes"])
    data = (ctypes.c_uint8 * size)()
    try:
        with open(entry.path, "rb") as source:
            source.seek(offset)
            got = source.readinto(memoryview(data))
    except OSError as exc:
        raise BadStateFile(f"unreadable: {exc}") from None
    crc = zlib.crc32(memoryview(data), zlib.crc32(_tokens_bytes(entry.tokens)))
    if got != size or crc != header["crc32"]:
        raise BadStateFile("corrupt (checksum mismatch)")
    return data, size


def remove(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink()


def state_files(root: Path | None = None) -> Iterator[StateFile]:
    """Every readable state file under the root, for `cache info` and `history show`."""
    root = root or states_root()
    for path in sorted(root.glob(f"*/*{SUFFIX}")):
        with contextlib.suppress(BadStateFile):
            yield read_header(path)[0]


@dataclass
class _Write:
    tokens: tuple[int, ...]
    data: Any
    size: int
    session: str
    prune: bool  # remove the states this one extends (not for a model that cannot cut back)


def _open_new(path: Path) -> IO[bytes]:
    return open(path, "xb")


class StateShelf:
    """The saved states of one model identity on disk, with the thread that writes them."""

    # How the temporary file is opened (a test opens /dev/full to get a real "disk full").
    open_temp: Callable[[Path], IO[bytes]] = staticmethod(_open_new)

    def __init__(
        self, identity: dict[str, Any], budget_bytes: int, root: Path | None = None
    ) -> None:
        self.identity = identity
        self.budget = budget_bytes
        self._root = root
        self._key = identity_key(identity)
        self._entries: dict[Path, StateFile] = {}
        self._scanned: tuple[Path, int] | None = None  # the directory and its mtime when listed
        self._lock = threading.Lock()
        self._queue: queue.Queue[_Write | None] = queue.Queue()
        self._writer: threading.Thread | None = None
        self._notices: list[str] = []
        self._told_full = False

    @property
    def root(self) -> Path:
        # Looked up at each use: the cache dir may move (tests give each test its own).
        return self._root or states_root()

    @root.setter
    def root(self, root: Path | None) -> None:
        """Keep states elsewhere (the bench: never the user's own); None: the cache dir."""
        self.flush()
        with self._lock:
            self._root, self._entries, self._scanned = root, {}, None

    @property
    def directory(self) -> Path:
        return self.root / self._key

    # --- the worker thread: finding and reading --------------------------------------------

    def entries(self) -> list[StateFile]:
        """The states on disk now (files other processes wrote included)."""
        directory = self.directory
        try:
            mtime = directory.stat().st_mtime_ns
        except OSError:
            return []
        with self._lock:
            if self._scanned != (directory, mtime):
                self._scan(directory, mtime)
            return list(self._entries.values())

    def clear(self) -> None:
        """Remove every state of this model from disk."""
        self.flush()
        with self._lock:
            for path in self.directory.glob(f"*{SUFFIX}"):
                remove(path)
            self._entries.clear()

    def _scan(self, directory: Path, mtime: int) -> None:
        known = self._entries if self._scanned and self._scanned[0] == directory else {}
        self._entries = {}
        for path in directory.glob(f"*{SUFFIX}"):
            entry = known.get(path)
            if entry is None:
                try:
                    entry = read_header(path)[0]
                except BadStateFile as exc:
                    self._discard(path, str(exc))
                    continue
                if entry.identity != self.identity:
                    self._discard(path, "saved for another model or other settings")
                    continue
            self._entries[path] = entry
        self._scanned = (directory, mtime)

    def read(self, entry: StateFile) -> tuple[Any, int] | None:
        """The state of an entry, or None (and the file removed) when it does not check out."""
        try:
            data = read_state(entry)
        except BadStateFile as exc:
            with self._lock:
                self._entries.pop(entry.path, None)
                self._discard(entry.path, str(exc))
            return None
        with contextlib.suppress(OSError):
            os.utime(entry.path)  # recently used: the last to be evicted
        return data

    def _discard(self, path: Path, reason: str) -> None:
        log.info("saved state %s ignored and removed: %s", path.name, reason)
        remove(path)

    def take_notices(self) -> list[str]:
        with self._lock:
            notices, self._notices = self._notices, []
        return notices

    # --- writing, on the shelf's own thread ---------------------------------------------------

    def save_later(
        self, tokens: tuple[int, ...], data: Any, size: int, session: str, prune: bool = True
    ) -> None:
        """Queue a state for writing; a newer state of the same session replaces a queued one."""
        if size > self.budget:
            return
        with self._lock:
            if self._writer is None or not self._writer.is_alive():
                self._writer = threading.Thread(
                    target=self._write_all, name="llamachat-state-writer", daemon=True
                )
                self._writer.start()
        self._queue.put(_Write(tokens, data, size, session, prune))

    def flush(self, timeout: float = 30.0) -> None:
        """Wait until the queued states are written (on quit: a daemon thread dies with the
        process, and the half-written file with it)."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.01)

    def _write_all(self) -> None:
        while (job := self._queue.get()) is not None:
            try:
                if not self._superseded(job):
                    self._write(job)
            except Exception:  # a bug in saving must not lose the chat; the state is a cache
                log.exception("saving a model state failed")
            finally:
                self._queue.task_done()

    def _superseded(self, job: _Write) -> bool:
        # Looking at the queue without taking from it: a later state of the same session
        # that starts with this one makes writing this one pointless.
        with self._queue.mutex:
            later = [j for j in self._queue.queue if j is not None]
        return any(
            j.session == job.session and j.tokens[: len(job.tokens)] == job.tokens for j in later
        )

    def _write(self, job: _Write) -> None:
        name = hashlib.sha256(_tokens_bytes(job.tokens)).hexdigest()[:32]
        directory = self.directory
        path = directory / f"{name}{SUFFIX}"
        try:
            directory.mkdir(parents=True, exist_ok=True)
            write_state(
                path, self.identity, job.tokens, job.data, job.size, job.session, self.open_temp
            )
        except OSError as exc:
            self._failed(exc)
            return
        entry = StateFile(
            path, job.tokens, path.stat().st_size, job.session, self.identity, time.time()
        )
        self.entries()
        with self._lock:
            self._entries[path] = entry
            # States this one extends are of no more use: it can be cut back to any of them.
            for other in list(self._entries.values()) if job.prune else []:
                if other.path != path and job.tokens[: len(other.tokens)] == other.tokens:
                    self._entries.pop(other.path)
                    remove(other.path)
        self._evict()

    def _failed(self, exc: OSError) -> None:
        log.warning("could not save a model state: %s", exc)
        with self._lock:
            if self._told_full:
                return
            self._told_full = True
            full = exc.errno in (errno.ENOSPC, errno.EDQUOT)
            self._notices.append(
                ("the disk is full: " if full else f"could not write to {self.root}: ")
                + "model states are not saved to disk now, so a session resumed later is read"
                " again from its start ([model] state_disk_mb = 0 stops trying)"
            )

    def _evict(self) -> None:
        """Remove the least recently used files of every model until the total fits."""
        files = []
        for path in self.root.glob(f"*/*{SUFFIX}*"):
            try:
                stat = path.stat()
            except OSError:
                continue
            if path.name.endswith(".tmp"):
                if time.time() - stat.st_mtime > _STALE_TEMP_SECONDS:
                    remove(path)
                continue
            files.append((stat.st_mtime, stat.st_size, path))
        total = sum(size for _, size, _ in files)
        for _, size, path in sorted(files):
            if total <= self.budget:
                break
            remove(path)
            total -= size
            with self._lock:
                self._entries.pop(path, None)


def remove_states(
    sessions: Collection[str] | None = None, root: Path | None = None
) -> tuple[int, int]:
    """Remove the saved states of these sessions (their conversations are in them), or all of
    them (with temporary files left by killed processes); (files removed, bytes freed)."""
    root = root or states_root()
    count = freed = 0
    for path in root.glob(f"*/*{SUFFIX}*"):
        if sessions is not None:
            try:
                if read_header(path)[0].session not in sessions:
                    continue
            except BadStateFile:
                continue
        with contextlib.suppress(OSError):
            size = path.stat().st_size
            path.unlink()
            count, freed = count + (not path.name.endswith(".tmp")), freed + size
    if sessions is None:
        for directory in root.glob("*"):
            with contextlib.suppress(OSError):
                directory.rmdir()
    return count, freed
