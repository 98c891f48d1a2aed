"""HF resolution: a pre-populated cache offline, and downloads from a local HTTP hub."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fake_hub import fake_hub, populate_cache
from tui_agent.agent.worker import AgentWorker
from tui_agent.config import AgentConfig, Config
from tui_agent.errors import ModelNotFoundError, OfflineError
from tui_agent.events import (
    Completed,
    DownloadProgress,
    Error,
    Event,
    ModelLoaded,
    ModelLoadProgress,
)
from tui_agent.models.hub import cached_repo_files, hf_cache_dir, resolve_hub_file
from tui_agent.session import llama_backend_loader
from tui_agent.tools.base import NoTools

REPO = "acme/tiny-GGUF"


def go_online(monkeypatch: pytest.MonkeyPatch, endpoint: str) -> None:
    """Point at the local hub; huggingface_hub reads HF_HUB_OFFLINE once, at import, so patch that too."""
    import huggingface_hub.constants

    monkeypatch.setenv("HF_ENDPOINT", endpoint)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    target = tmp_path / "hf-cache"
    monkeypatch.setenv("HF_HUB_CACHE", str(target))
    return target


def test_cache_dir_follows_env(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert hf_cache_dir() == cache
    monkeypatch.delenv("HF_HUB_CACHE")
    monkeypatch.setenv("HF_HOME", "/x/hf")
    assert hf_cache_dir() == Path("/x/hf/hub")


def test_offline_resolves_from_cache_including_globs(cache: Path) -> None:
    populate_cache(
        cache, REPO, {"m-Q4_K_M.gguf": b"GGUF1", "m-Q8_0.gguf": b"GGUF2", "README.md": b"hi"}
    )
    assert cached_repo_files(REPO) == ["README.md", "m-Q4_K_M.gguf", "m-Q8_0.gguf"]
    path = resolve_hub_file(REPO, "m-Q4_K_M.gguf")
    assert path.read_bytes() == b"GGUF1"
    assert resolve_hub_file(REPO, "*Q8_0.gguf").read_bytes() == b"GGUF2"


def test_offline_glob_matching_several_lists_them(cache: Path) -> None:
    populate_cache(cache, REPO, {"m-Q4_K_M.gguf": b"1", "m-Q8_0.gguf": b"2"})
    with pytest.raises(ModelNotFoundError) as info:
        resolve_hub_file(REPO, "*.gguf")
    assert "matches 2 files" in str(info.value) and "m-Q8_0.gguf" in str(info.value)
    with pytest.raises(ModelNotFoundError) as none:
        resolve_hub_file(REPO, "*Q2_K*")
    assert "no file matching" in str(none.value) and "m-Q4_K_M.gguf" in str(none.value)


def test_offline_and_not_cached(cache: Path) -> None:
    with pytest.raises(OfflineError) as info:
        resolve_hub_file(REPO, "m.gguf")
    assert "HF_HUB_OFFLINE" in str(info.value) and "not in the Hugging Face cache" in str(
        info.value
    )


def test_download_with_progress_then_cached(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    payload = b"GGUF" + bytes(range(256)) * 4096  # ~1 MiB so progress comes in several chunks
    events: list[Event] = []
    with fake_hub({REPO: {"m-Q4_K_M.gguf": payload}}) as (endpoint, requests):
        go_online(monkeypatch, endpoint)
        path = resolve_hub_file(REPO, "m-Q4_K_M.gguf", events.append)
        assert path.read_bytes() == payload
        assert path.is_relative_to(cache)
        progress = [e for e in events if isinstance(e, DownloadProgress)]
        assert progress and progress[-1].downloaded == len(payload) == progress[-1].total
        assert progress[-1].bytes_per_sec > 0
        served = len(requests)
        # Second time: straight from the cache, no request at all.
        assert resolve_hub_file(REPO, "m-Q4_K_M.gguf") == path
        assert len(requests) == served
    # And with the network gone it is still found.
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert resolve_hub_file(REPO, "m-Q4_K_M.gguf") == path


def test_download_glob_uses_the_repo_listing(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with fake_hub({REPO: {"a-Q4_K_M.gguf": b"GGUFa", "a-Q8_0.gguf": b"GGUFb"}}) as (endpoint, _):
        go_online(monkeypatch, endpoint)
        assert resolve_hub_file(REPO, "*Q8_0*").read_bytes() == b"GGUFb"


def test_repo_and_file_not_found(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with fake_hub({REPO: {"a.gguf": b"GGUF"}}) as (endpoint, _):
        go_online(monkeypatch, endpoint)
        with pytest.raises(ModelNotFoundError) as repo:
            resolve_hub_file("acme/missing", "a.gguf")
        assert "repo not found: acme/missing" in str(repo.value)
        with pytest.raises(ModelNotFoundError) as entry:
            resolve_hub_file(REPO, "b.gguf")
        assert "file not found in acme/tiny-GGUF: b.gguf" in str(entry.value)


def test_unreachable_hub_is_an_offline_error(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    go_online(monkeypatch, f"http://127.0.0.1:{port}")
    with pytest.raises(OfflineError) as info:
        resolve_hub_file(REPO, "a.gguf")
    assert "cannot reach the Hugging Face Hub" in str(info.value)


def test_a_cancel_stops_a_download_and_keeps_nothing(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """cancel() while the model downloads (Esc, a model switch, quitting): the download stops at
    its next progress report, the worker says so, and no half file is left in the cache."""
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "DOWNLOAD_CHUNK_SIZE", 64 * 1024)
    data = b"GGUF" + bytes(2 * 1024 * 1024)
    events: list[Event] = []

    def sink(event: Event) -> None:
        events.append(event)
        if isinstance(event, DownloadProgress):
            worker.cancel()

    with fake_hub({REPO: {"big.gguf": data}}) as (endpoint, _):
        go_online(monkeypatch, endpoint)
        loader = llama_backend_loader(Config(), f"{REPO}:big.gguf")
        worker = AgentWorker(loader, NoTools(), AgentConfig(), sink=sink)
        worker.start()
        assert worker.ready.wait(30)
        worker.stop()
    progress = [e for e in events if isinstance(e, DownloadProgress)]
    assert len(progress) == 1 and progress[0].downloaded < len(data)
    [error] = [e for e in events if isinstance(e, Error)]
    assert error.message == "download of big.gguf stopped" and error.kind == "model_load"
    assert [e.reason for e in events if isinstance(e, Completed)] == ["cancelled"]
    assert not [e for e in events if isinstance(e, ModelLoadProgress | ModelLoaded)]
    assert cached_repo_files(REPO) == [] and not list(cache.rglob("*.incomplete"))
