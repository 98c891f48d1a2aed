"""The tool list kept between runs: read back as saved, keyed by everything that shapes it, and
only ever a list — a call waits for the real tools and their permission gate."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from tui_agent.config import Config, PermissionsConfig
from tui_agent.session import DeferredTools
from tui_agent.tools.base import CallContext, ToolCall, ToolOutcome, ToolSpec
from tui_agent.tools.spec_cache import load_specs, save_specs, tools_key

SPECS = [
    ToolSpec("read_file", "Read a file.", {"type": "object"}, read_only=True, destructive=False),
    ToolSpec("run_shell", "Run a command.", server="builtin"),
]


def test_a_saved_list_reads_back_equal() -> None:
    key = tools_key(Config(), [], [], only_unasked=True)
    assert load_specs(key) is None
    save_specs(key, SPECS)
    assert load_specs(key) == SPECS


def test_the_key_follows_everything_that_shapes_the_list(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    base = Config()
    key = tools_key(base, [], [], only_unasked=False)
    denied = Config(permissions=PermissionsConfig(deny=["run_shell"]))
    assert tools_key(denied, [], [], only_unasked=False) != key
    assert tools_key(base, ["run_shell(ls*)"], [], only_unasked=False) != key
    assert tools_key(base, [], ["write_file"], only_unasked=False) != key
    assert tools_key(base, [], [], only_unasked=True) != key
    monkeypatch.chdir(tmp_path)  # the default workspace is the folder llamachat starts in
    assert tools_key(base, [], [], only_unasked=False) != key


def test_an_unreadable_list_is_no_list(isolated_dirs: Path) -> None:
    key = tools_key(Config(), [], [], only_unasked=True)
    save_specs(key, SPECS)
    (path,) = isolated_dirs.glob("cache/**/tool-lists/*.json")
    path.write_text("[{not json")
    assert load_specs(key) is None


CONTEXT = CallContext(lambda event: None, lambda: False, lambda request: None)  # type: ignore[arg-type,return-value]


class _Gate:
    """Stands in for the permission gate: records the calls that reach it."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def specs(self) -> list[ToolSpec]:
        return SPECS[:1]

    def execute(self, call: ToolCall, context: CallContext) -> ToolOutcome:
        self.calls.append(call.name)
        return ToolOutcome(True, "ran")


class _Stack:
    def __init__(self, gate: _Gate) -> None:
        self.gate = gate

    def start(self) -> list[object]:
        return []

    def close(self) -> None:
        pass


def test_the_list_is_offered_until_the_tools_are_up_and_calls_wait_for_them() -> None:
    key = tools_key(Config(), [], [], only_unasked=True)
    save_specs(key, SPECS)
    tools = DeferredTools(key)
    release = threading.Event()
    gate = _Gate()

    def build() -> _Stack:
        release.wait(10)
        return _Stack(gate)

    tools.arm(build, lambda event: None)  # type: ignore[arg-type]
    assert tools.specs() == SPECS, "the saved list, without starting anything"
    assert tools.shown_specs() == [], "the UI shows no tools before they are up"
    outcome: list[ToolOutcome] = []
    caller = threading.Thread(
        target=lambda: outcome.append(tools.execute(ToolCall("1", "read_file", {}), CONTEXT))
    )
    caller.start()
    caller.join(0.3)
    assert caller.is_alive() and gate.calls == [], "a call waits for the real tools"
    release.set()
    caller.join(10)
    assert gate.calls == ["read_file"] and outcome[0].success
    assert tools.specs() == SPECS[:1], "once up, the real list"
    assert load_specs(key) == SPECS[:1], "and it is what the next run is offered"


def test_a_failure_to_build_the_tools_is_raised_on_the_worker() -> None:
    tools = DeferredTools("")

    def build() -> _Stack:
        raise ValueError("bad rule")

    tools.arm(build, lambda event: None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="bad rule"):
        tools.specs()
