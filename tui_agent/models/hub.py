"""Hugging Face repo files → local paths, through the standard HF cache.

The cache is tried first (``local_files_only=True``); the network is used only when the file is
missing and ``HF_HUB_OFFLINE`` is not set. ``Llama.from_pretrained`` is avoided on purpose: it
lists the repo over the network even when the file is cached. The endpoint, cache dir and offline
flag are read from the environment at call time, so they can change without re-importing.
"""

from __future__ import annotations

import fnmatch
import os
import time
from pathlib import Path
from typing import Any

from tui_agent.errors import LlamachatError, ModelNotFoundError, OfflineError
from tui_agent.events import DownloadProgress, EventSink, ignore_event

_TRUE = {"1", "true", "yes", "on"}
_GLOB_CHARS = set("*?[")


def hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in _TRUE


def hf_cache_dir() -> Path:
    explicit = os.environ.get("HF_HUB_CACHE") or os.environ.get("HUGGINGFACE_HUB_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    home = os.environ.get("HF_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "huggingface"
    )
    return Path(home).expanduser() / "hub"


def _endpoint() -> str | None:
    return os.environ.get("HF_ENDPOINT") or None


def cached_repo_files(repo_id: str) -> list[str]:
    """Files of a repo present in any cached snapshot (relative paths, sorted)."""
    snapshots = hf_cache_dir() / f"models--{repo_id.replace('/', '--')}" / "snapshots"
    found: set[str] = set()
    if snapshots.is_dir():
        for snapshot in snapshots.iterdir():
            found.update(str(p.relative_to(snapshot)) for p in snapshot.rglob("*") if p.is_file())
    return sorted(found)


def resolve_hub_file(
    repo_id: str, filename: str, on_event: EventSink = ignore_event, revision: str | None = None
) -> Path:
    """The local path of ``repo_id``/``filename`` (a glob picks exactly one file)."""
    if _GLOB_CHARS & set(filename):
        filename = _pick_one(repo_id, filename, revision)
    cached = _from_cache(repo_id, filename, revision)
    if cached is not None:
        return cached
    if hub_offline():
        raise OfflineError(
            f"{repo_id}/{filename} is not in the Hugging Face cache ({hf_cache_dir()})"
            " and HF_HUB_OFFLINE is set",
            "unset HF_HUB_OFFLINE to download it, or pick a model you have: `llamachat models list`",
        )
    return _download(repo_id, filename, revision, on_event)


def _from_cache(repo_id: str, filename: str, revision: str | None) -> Path | None:
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return Path(
            hf_hub_download(
                repo_id,
                filename,
                revision=revision,
                cache_dir=hf_cache_dir(),
                local_files_only=True,
            )
        )
    except LocalEntryNotFoundError:
        return None


def _pick_one(repo_id: str, pattern: str, revision: str | None) -> str:
    if hub_offline():
        files, where = cached_repo_files(repo_id), "in the local cache"
    else:
        files, where = _remote_files(repo_id, revision), "in the repo"
    matches = [f for f in files if fnmatch.fnmatch(f, pattern)]
    if len(matches) == 1:
        return matches[0]
    ggufs = [f for f in files if f.endswith(".gguf")]
    if not matches:
        listing = ", ".join(ggufs[:12]) or "none"
        raise ModelNotFoundError(
            f"no file matching {pattern!r} {where} {repo_id} (GGUF files there: {listing})",
            "use one of the names listed, or a narrower glob",
        )
    raise ModelNotFoundError(
        f"{pattern!r} matches {len(matches)} files {where} {repo_id}: {', '.join(matches[:12])}",
        "make the pattern match exactly one file, e.g. the full file name",
    )


def _remote_files(repo_id: str, revision: str | None) -> list[str]:
    from huggingface_hub import HfApi

    try:
        return sorted(HfApi(endpoint=_endpoint()).list_repo_files(repo_id, revision=revision))
    except Exception as exc:  # the hub raises many types; each maps to one message
        raise _hub_error(exc, repo_id, None) from exc


def _download(repo_id: str, filename: str, revision: str | None, on_event: EventSink) -> Path:
    from huggingface_hub import hf_hub_download

    try:
        return Path(
            hf_hub_download(
                repo_id,
                filename,
                revision=revision,
                cache_dir=hf_cache_dir(),
                endpoint=_endpoint(),
                tqdm_class=_progress_class(filename, on_event),
            )
        )
    except LlamachatError:  # from the event sink: the user stopped the download
        raise
    except Exception as exc:
        raise _hub_error(exc, repo_id, filename) from exc


def _hub_error(exc: Exception, repo_id: str, filename: str | None) -> Exception:
    from huggingface_hub.errors import (
        EntryNotFoundError,
        GatedRepoError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    # The hub reports "unreachable and not cached" as a LocalEntryNotFoundError.
    if isinstance(exc, LocalEntryNotFoundError) or _is_connection_error(exc):
        return OfflineError(
            f"cannot reach the Hugging Face Hub to get {repo_id}/{filename or ''}",
            "check your network (or HF_ENDPOINT), or pick a model you have: `llamachat models list`",
        )
    if isinstance(exc, GatedRepoError):
        return ModelNotFoundError(
            f"{repo_id} is gated: you must accept its terms on the Hub first",
            "accept the terms on the model's page, then `hf auth login`, or pick another model",
        )
    if isinstance(exc, RepositoryNotFoundError):
        return ModelNotFoundError(
            f"Hugging Face repo not found: {repo_id}",
            "check the spelling (org/name), or log in with `hf auth login` if it is private",
        )
    if isinstance(exc, RevisionNotFoundError):
        return ModelNotFoundError(f"revision not found in {repo_id}", "check the revision name")
    if isinstance(exc, EntryNotFoundError):
        return ModelNotFoundError(
            f"file not found in {repo_id}: {filename}",
            f"list the repo's GGUF files with a glob, e.g. `{repo_id}:*Q4_K_M.gguf`",
        )
    return exc


def _is_connection_error(exc: BaseException | None) -> bool:
    # The hub's HTTP client (httpx or its fork httpx2) roots its network errors at TransportError.
    while exc is not None:
        names = {cls.__name__ for cls in type(exc).__mro__}
        if "TransportError" in names or isinstance(exc, ConnectionError | TimeoutError):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def _progress_class(filename: str, on_event: EventSink) -> type[Any]:
    """A tqdm subclass that turns the hub's progress bar into DownloadProgress events."""
    from tqdm.auto import tqdm

    class _EventProgress(tqdm):  # type: ignore[misc]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs["disable"] = True  # never draw on the terminal; events carry the progress
            super().__init__(*args, **kwargs)
            self._started = time.monotonic()
            self._done = int(kwargs.get("initial") or 0)
            self._last_emit = 0.0

        def update(self, n: float | None = 1) -> bool | None:
            self._done += int(n or 0)
            now = time.monotonic()
            finished = self.total is not None and self._done >= self.total
            if finished or now - self._last_emit >= 0.1:
                self._last_emit = now
                elapsed = max(now - self._started, 1e-6)
                total = int(self.total) if self.total else None
                on_event(DownloadProgress(filename, self._done, total, self._done / elapsed))
            return None

    return _EventProgress
