"""The session database file: open, migrate, and never lose or overwrite what is in it.

SQLite in WAL mode (readers never block the writer), schema versioned with ``PRAGMA
user_version`` and forward migrations. A file that is not a readable database, or that a newer
llamachat wrote, is moved aside (never deleted or overwritten) and the user is told where.
"""

from __future__ import annotations

import os
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path

import platformdirs

from tui_agent.errors import HistoryUnavailableError

# Each entry upgrades the schema from version i to i + 1, inside one transaction.
MIGRATIONS: list[str] = [
    """
    CREATE TABLE sessions (
        id TEXT PRIMARY KEY,
        title TEXT NOT NULL DEFAULT '',
        created REAL NOT NULL,
        updated REAL NOT NULL,
        model TEXT NOT NULL DEFAULT '',
        workspace TEXT NOT NULL DEFAULT '',
        parent_id TEXT REFERENCES sessions(id) ON DELETE SET NULL,
        system_prompt TEXT NOT NULL DEFAULT '',
        message_count INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX sessions_by_updated ON sessions(updated DESC);
    CREATE TABLE entries (
        id INTEGER PRIMARY KEY,
        session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
        kind TEXT NOT NULL,
        role TEXT NOT NULL DEFAULT '',
        content TEXT NOT NULL DEFAULT '',
        data TEXT NOT NULL DEFAULT '{}',
        interrupted INTEGER NOT NULL DEFAULT 0,
        created REAL NOT NULL
    );
    CREATE INDEX entries_by_session ON entries(session_id, id);
    CREATE VIRTUAL TABLE entries_fts USING fts5(text, tokenize = 'unicode61 remove_diacritics 2');
    CREATE TRIGGER entries_fts_delete AFTER DELETE ON entries BEGIN
        DELETE FROM entries_fts WHERE rowid = old.id;
    END;
    """,
]
SCHEMA_VERSION = len(MIGRATIONS)
# How long opening waits for another process that holds the database's lock.
_LOCK_WAIT_SECONDS = 10.0


def default_db_path() -> Path:
    return platformdirs.user_data_path("llamachat") / "history.db"


@dataclass
class OpenedDatabase:
    connection: sqlite3.Connection
    path: Path
    notices: list[str] = field(default_factory=list)


def open_database(path: Path) -> OpenedDatabase:
    """Open (creating or migrating) the database; a bad file is moved aside first."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        notices: list[str] = []
        problem = _problem_with(path) if path.exists() else None
        if problem is not None:
            aside = _move_aside(path, problem[0])
            notices.append(
                f"the history database {path} {problem[1]}; it was moved to {aside} and a new one"
                " started"
            )
        connection = _connect(path)
        try:
            _migrate(connection)
        except BaseException:
            connection.close()
            raise
    except (OSError, sqlite3.OperationalError) as exc:
        # A folder that cannot be created or written, a file where a folder should be, a full
        # disk: sqlite3 says "unable to open database file" without saying which or why.
        raise HistoryUnavailableError(
            f"the history database {path} cannot be opened: {_cause(path, exc)}",
            f"make sure {path.parent} is a folder you can write to, set [history] db_path in the"
            " config to a writable file, or run the chat with --no-save",
        ) from exc
    return OpenedDatabase(connection, path, notices)


def _cause(path: Path, exc: Exception) -> str:
    """What is really wrong, where sqlite3 only says it could not open the file."""
    folder = next((p for p in (path.parent, *path.parent.parents) if p.exists()), None)
    if folder is not None and not folder.is_dir():
        return f"{folder} is a file, not a folder"
    if folder == path.parent and not os.access(folder, os.W_OK | os.X_OK):
        return f"the folder {folder} is not writable"
    if path.exists() and not os.access(path, os.W_OK):
        return "the file is read-only"
    if isinstance(exc, OSError):
        return exc.strerror or str(exc)
    return f"SQLite could not open or create it ({exc})"


def _connect(path: Path) -> sqlite3.Connection:
    connection = sqlite3.connect(path, timeout=10, isolation_level=None, check_same_thread=False)
    connection.row_factory = sqlite3.Row
    _switch_to_wal(connection)
    # NORMAL in WAL mode: a commit survives a process crash (kill -9); only power loss can
    # lose the last transactions, and the file stays consistent either way.
    connection.execute("PRAGMA synchronous=NORMAL")
    connection.execute("PRAGMA foreign_keys=ON")
    return connection


def _switch_to_wal(connection: sqlite3.Connection) -> None:
    """WAL mode, waiting while another process holds the lock the switch needs (two processes
    opening a new database at once): SQLite reports that as "locked" without waiting itself."""
    deadline = time.monotonic() + _LOCK_WAIT_SECONDS
    while True:
        try:
            connection.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _problem_with(path: Path) -> tuple[str, str] | None:
    """(suffix, description) when the file must not be used as it is."""
    try:
        probe = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
        try:
            version = probe.execute("PRAGMA user_version").fetchone()[0]
            probe.execute("SELECT count(*) FROM sqlite_master").fetchone()
            if (
                version <= SCHEMA_VERSION
                and probe.execute("PRAGMA quick_check(1)").fetchone()[0] != "ok"
            ):
                return "corrupt", "is damaged"
        finally:
            probe.close()
    except sqlite3.DatabaseError as exc:
        return "corrupt", f"could not be read ({exc})"
    if version > SCHEMA_VERSION:
        return (
            f"v{version}",
            f"was written by a newer llamachat (schema {version}, this one reads {SCHEMA_VERSION})",
        )
    return None


def _move_aside(path: Path, suffix: str) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target = path.with_name(f"{path.name}.{suffix}-{stamp}")
    number = 1
    while target.exists() or target.with_name(target.name + "-wal").exists():
        # Another file was moved aside this second: rename() would replace it.
        number += 1
        target = path.with_name(f"{path.name}.{suffix}-{stamp}-{number}")
    path.rename(target)
    for extra in ("-wal", "-shm"):
        companion = path.with_name(path.name + extra)
        if companion.exists():
            companion.rename(target.with_name(target.name + extra))
    return target


def _migrate(connection: sqlite3.Connection) -> None:
    """Apply the missing migrations, one transaction each. The version is read inside the
    write transaction: another process that opened the same new file at the same moment may have
    migrated it while this one waited for the lock."""
    while True:
        # executescript would commit on its own; run the statements in one explicit transaction.
        connection.execute("BEGIN IMMEDIATE")
        try:
            version = connection.execute("PRAGMA user_version").fetchone()[0]
            if version >= SCHEMA_VERSION:
                connection.execute("COMMIT")
                return
            for statement in _statements(MIGRATIONS[version]):
                connection.execute(statement)
            connection.execute(f"PRAGMA user_version = {version + 1}")
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise


def _statements(script: str) -> list[str]:
    """Split a migration into statements (triggers contain inner semicolons)."""
    statements: list[str] = []
    current = ""
    for line in script.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            statements.append(current.strip())
            current = ""
    if current.strip():
        statements.append(current.strip())
    return statements
