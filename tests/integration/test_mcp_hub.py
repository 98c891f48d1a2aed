"""The MCP hub against real servers: our test server over stdio and streamable HTTP, and
third-party servers from the registries (mcp-server-time from PyPI; an npm server when node is here)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import free_port
from tui_agent.config import McpServerConfig
from tui_agent.tools.mcp_hub import McpHub

SERVER = str(Path(__file__).parent.parent / "mcp_test_server.py")


def stdio(**overrides: object) -> McpServerConfig:
    settings: dict[str, object] = {"args": [SERVER], **overrides}
    return McpServerConfig(command=sys.executable, **settings)  # type: ignore[arg-type]


@pytest.fixture
def hub_factory(tmp_path: Path) -> Iterator[object]:
    hubs: list[McpHub] = []

    def make(servers: dict[str, McpServerConfig]) -> McpHub:
        hub = McpHub(servers, log_dir=tmp_path / "logs")
        hubs.append(hub)
        hub.start()
        return hub

    yield make
    for hub in hubs:
        hub.close()


def test_stdio_list_call_error_and_log(hub_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    hub = hub_factory({"t": stdio(trusted=True)})
    status = hub.statuses()[0]
    assert status.state == "ready" and status.transport == "stdio" and status.protocol_version
    names = [s.name for s in hub.specs()]
    assert names == sorted(names) and "t__echo" in names and "t__add" in names
    echo = next(s for s in hub.specs() if s.name == "t__echo")
    assert echo.read_only and not echo.destructive and echo.server == "t"
    crash = next(s for s in hub.specs() if s.name == "t__crash")
    assert not crash.read_only and crash.destructive, (
        "unannotated tools are destructive (MCP defaults)"
    )
    assert hub.call("t__add", {"a": 2, "b": 3}).output == "5"
    failed = hub.call("t__fail", {"message": "disk is full"})
    assert not failed.success and "disk is full" in failed.output
    log = Path(status.log_path)
    assert log.parent == tmp_path / "logs" and "test server starting" in log.read_text()


def test_timeout_then_the_server_is_still_usable(hub_factory) -> None:  # type: ignore[no-untyped-def]
    hub = hub_factory({"t": stdio(tool_timeout_sec=0.5)})
    started = time.monotonic()
    outcome = hub.call("t__sleep", {"seconds": 5})
    assert not outcome.success and "timed out after 0.5 s" in outcome.output
    assert time.monotonic() - started < 3
    assert hub.call("t__echo", {"text": "still here"}).output == "still here"


def test_crash_mid_call_then_restart_on_next_use(hub_factory) -> None:  # type: ignore[no-untyped-def]
    hub = hub_factory({"t": stdio()})
    crashed = hub.call("t__crash", {})
    assert not crashed.success and "stopped during the call" in crashed.output
    assert hub.statuses()[0].state == "crashed"
    assert "t__echo" in [s.name for s in hub.specs()], "a crashed server's tools stay listed"
    again = hub.call("t__echo", {"text": "back"})
    assert again.success and again.output == "back"
    assert any("restarting" in n for n in hub.notices) and any(
        "stopped during" in n for n in hub.notices
    )


def test_cancel_abandons_a_running_call(hub_factory) -> None:  # type: ignore[no-untyped-def]
    hub = hub_factory({"t": stdio()})
    deadline = time.monotonic() + 0.3
    started = time.monotonic()
    outcome = hub.call("t__sleep", {"seconds": 10}, cancelled=lambda: time.monotonic() > deadline)
    assert not outcome.success and "cancelled" in outcome.output
    assert time.monotonic() - started < 2


def test_command_not_found_and_disabled(hub_factory) -> None:  # type: ignore[no-untyped-def]
    hub = hub_factory(
        {
            "missing": McpServerConfig(command="no-such-mcp-server-xyz"),
            "off": stdio(enabled=False),
            "ok": stdio(),
        }
    )
    by_name = {s.name: s for s in hub.statuses()}
    assert (
        by_name["missing"].state == "failed"
        and "command not found: no-such-mcp-server-xyz" in by_name["missing"].error
    )
    assert by_name["off"].state == "disabled"
    assert by_name["ok"].state == "ready"
    assert not [s for s in hub.specs() if s.server in ("missing", "off")]


def test_enabled_and_disabled_tools(hub_factory) -> None:  # type: ignore[no-untyped-def]
    hub = hub_factory(
        {"a": stdio(enabled_tools=["echo", "add"]), "b": stdio(disabled_tools=["crash"])}
    )
    names = {s.name for s in hub.specs()}
    assert {n for n in names if n.startswith("a__")} == {"a__echo", "a__add"}
    assert "b__crash" not in names and "b__echo" in names


def test_startup_timeout(hub_factory) -> None:  # type: ignore[no-untyped-def]
    slow = McpServerConfig(
        command=sys.executable, args=["-c", "import time; time.sleep(30)"], startup_timeout_sec=0.5
    )
    started = time.monotonic()
    hub = hub_factory({"slow": slow})
    assert (
        hub.statuses()[0].state == "failed"
        and "did not start within 0.5 s" in hub.statuses()[0].error
    )
    assert time.monotonic() - started < 5


@pytest.fixture
def http_server() -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, SERVER, "http", str(port)],
        stderr=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.1)
    yield f"http://127.0.0.1:{port}/mcp"
    process.terminate()
    process.wait(10)


def test_streamable_http(hub_factory, http_server: str, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("TEST_TOKEN", "secret")
    hub = hub_factory(
        {
            "web": McpServerConfig(
                url=http_server, bearer_token_env_var="TEST_TOKEN", headers={"X-Test": "1"}
            )
        }
    )
    status = hub.statuses()[0]
    assert status.state == "ready" and status.transport == "http"
    assert hub.call("web__echo", {"text": "over http"}).output == "over http"
    failed = hub.call("web__fail", {"message": "nope"})
    assert not failed.success and "nope" in failed.output


def test_http_missing_token_env(hub_factory, http_server: str) -> None:  # type: ignore[no-untyped-def]
    hub = hub_factory(
        {"web": McpServerConfig(url=http_server, bearer_token_env_var="NOT_SET_ANYWHERE")}
    )
    assert "NOT_SET_ANYWHERE" in hub.statuses()[0].error


def test_http_server_down(hub_factory) -> None:  # type: ignore[no-untyped-def]
    hub = hub_factory(
        {"web": McpServerConfig(url=f"http://127.0.0.1:{free_port()}/mcp", startup_timeout_sec=5)}
    )
    assert hub.statuses()[0].state == "failed"


def test_third_party_mcp_server_time(hub_factory) -> None:  # type: ignore[no-untyped-def]
    hub = hub_factory(
        {
            "time": McpServerConfig(
                command=sys.executable, args=["-m", "mcp_server_time", "--local-timezone", "UTC"]
            )
        }
    )
    assert hub.statuses()[0].state == "ready", hub.statuses()[0].error
    names = {s.name for s in hub.specs()}
    assert "time__get_current_time" in names
    spec = next(s for s in hub.specs() if s.name == "time__get_current_time")
    assert spec.read_only, "mcp-server-time annotates its tools read-only"
    outcome = hub.call("time__get_current_time", {"timezone": "Europe/Paris"})
    assert outcome.success and "Europe/Paris" in outcome.output
    bad = hub.call("time__get_current_time", {"timezone": "Mars/Olympus"})
    assert not bad.success


@pytest.fixture(scope="session")
def npm_filesystem_server(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node is not installed")
    prefix = tmp_path_factory.mktemp("npm")
    subprocess.run(
        [
            "npm",
            "install",
            "--silent",
            "--no-audit",
            "--no-fund",
            "--prefix",
            str(prefix),
            "@modelcontextprotocol/server-filesystem",
        ],
        check=True,
        timeout=600,
    )
    entry = (
        prefix
        / "node_modules"
        / "@modelcontextprotocol"
        / "server-filesystem"
        / "dist"
        / "index.js"
    )
    assert entry.exists(), list((prefix / "node_modules" / "@modelcontextprotocol").iterdir())
    return entry


def test_third_party_npm_filesystem_server(
    hub_factory, npm_filesystem_server: Path, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    root = tmp_path / "shared"
    root.mkdir()
    (root / "notes.txt").write_text("from the npm server")
    hub = hub_factory(
        {
            "fs": McpServerConfig(
                command="node", args=[str(npm_filesystem_server), str(root)], trusted=True
            )
        }
    )
    assert hub.statuses()[0].state == "ready", hub.statuses()[0].error
    specs = {s.name: s for s in hub.specs()}
    assert specs["fs__read_text_file"].read_only and not specs["fs__write_file"].read_only
    outcome = hub.call("fs__read_text_file", {"path": str(root / "notes.txt")})
    assert outcome.success and "from the npm server" in outcome.output


def test_a_server_that_writes_non_utf8_on_stdout_still_starts_and_is_named(hub_factory) -> None:  # type: ignore[no-untyped-def]
    hub = hub_factory({"t": stdio(args=[SERVER, "--noise"], startup_timeout_sec=10)})
    status = hub.statuses()[0]
    assert status.state == "ready", status.error
    assert "1 line(s) on stdout that are not UTF-8" in status.problem()
    assert "log to stderr" in status.warning
    assert hub.call("t__add", {"a": 2, "b": 3}).output == "5"


def test_a_server_that_only_writes_noise_fails_with_the_reason(hub_factory) -> None:  # type: ignore[no-untyped-def]
    noisy = McpServerConfig(
        command=sys.executable,
        args=[
            "-c",
            "import sys, time; sys.stdout.buffer.write(b'\\xff oops\\n'); sys.stdout.flush(); time.sleep(30)",
        ],
        startup_timeout_sec=1,
    )
    status = hub_factory({"noisy": noisy}).statuses()[0]
    assert status.state == "failed"
    assert (
        "did not start within 1 s (startup_timeout_sec); it wrote 1 line(s) on stdout that are not UTF-8"
        in status.error
    )
