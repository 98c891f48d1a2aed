from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tui_agent.config import (
    AgentConfig,
    Config,
    config_path,
    default_config_path,
    documented_defaults,
    load_config,
    save_settings,
)
from tui_agent.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def error_of(path: Path) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return str(info.value)


def test_missing_default_file_means_defaults() -> None:
    config = load_config()
    assert config == Config(path=default_config_path())
    assert config.agent.compaction_threshold_pct == 0.75


def test_env_var_and_explicit_path_take_precedence(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env_file = write(tmp_path, "[agent]\ntemperature = 0.5\n")
    monkeypatch.setenv("LLAMACHAT_CONFIG", str(env_file))
    assert config_path() == (env_file, True)
    assert load_config().agent.temperature == 0.5
    other = tmp_path / "other.toml"
    other.write_text("[agent]\ntemperature = 0.9\n")
    assert load_config(other).agent.temperature == 0.9


def test_named_file_that_does_not_exist_is_an_error(tmp_path: Path) -> None:
    message = error_of(tmp_path / "nope.toml")
    assert "config file not found" in message and "nope.toml" in message
    assert "llamachat config init" in message


def test_all_sections_parse(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
[model]
source = "tiny"
n_ctx = 2048
flash_attn = false
[agent]
max_iterations = 0
stop_sequences = ["</s>"]
temperature = 1
[ui]
theme = "llamachat-light"
[permissions]
allow = ["run_shell(git status*)"]
[mcp_servers.time]
command = "mcp-server-time"
args = ["--local-timezone", "UTC"]
env = { TZ = "UTC" }
[mcp_servers.remote]
url = "http://127.0.0.1:9000/mcp"
trusted = true
""",
    )
    config = load_config(path)
    assert config.model.n_ctx == 2048 and config.model.flash_attn is False
    assert config.agent.max_iterations == 0 and config.agent.stop_sequences == ["</s>"]
    assert config.agent.temperature == 1.0 and isinstance(config.agent.temperature, float)
    assert config.mcp_servers["time"].env == {"TZ": "UTC"}
    assert config.mcp_servers["remote"].trusted is True
    assert config.permissions.allow == ["run_shell(git status*)"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "[agent]\ntemprature = 0.5\n",
            ["line 2", "[agent] unknown key `temprature`", "did you mean `temperature`"],
        ),
        ("[agnet]\n", ["line 1", "unknown section [agnet]", "did you mean `agent`"]),
        ('[model]\nn_ctx = "big"\n', ["line 2", "n_ctx: expected a whole number", "got a string"]),
        ("[model]\nflash_attn = 1\n", ["flash_attn: expected true or false"]),
        ("[agent]\n\ntop_p = 1.5\n", ["line 3", "top_p: 1.5 is out of range, expected 0.0 to 1.0"]),
        (
            '[model]\ntool_format = "xml"\n',
            ["line 2", "tool_format: 'xml' is not one of 'auto', 'json', 'tagged'"],
        ),
        ("[agent]\nstop_sequences = [1, 2]\n", ["stop_sequences: expected a list of strings"]),
        ("[model]\nn_ctx = 4096\nn_ctx = 2048\n", ["line 3", "TOML syntax error"]),
        ("[model\nsource = 'x'\n", ["line 1", "TOML syntax error"]),
        ("model = 3\n", ["`model` must be a table"]),
        ("[mcp_servers.x]\nargs = []\n", ["[mcp_servers.x] needs exactly one of `command`"]),
        (
            "[mcp_servers.builtin]\ncommand = 'x'\n",
            ["`builtin` is taken by llamachat's built-in tools", "rename [mcp_servers.builtin]"],
        ),
        (
            "[mcp_servers.x]\ncommand = 'a'\ntrusted = 'yes'\n",
            ["line 3", "trusted: expected true or false"],
        ),
    ],
)
def test_errors_name_file_key_line_and_expectation(
    tmp_path: Path, text: str, expected: list[str]
) -> None:
    path = write(tmp_path, text)
    message = error_of(path)
    assert str(path) in message
    for part in expected:
        assert part in message


def test_non_utf8_file(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_bytes(b"[ui]\ntheme = '\xff'\n")
    assert "not UTF-8" in error_of(path)


def test_save_keeps_other_keys_and_validates(tmp_path: Path) -> None:
    path = write(tmp_path, "[agent]\ntemperature = 0.3\n[ui]\ntheme = 'x'\n[custom_note]\n")
    # An unknown section in the file is reported, so the merge never silently keeps garbage.
    with pytest.raises(ConfigError):
        save_settings(path, {"ui": {"theme": "y"}})
    path.write_text("[agent]\ntemperature = 0.3\n[ui]\ntheme = 'x'\n")
    save_settings(path, {"ui": {"theme": "llamachat-light"}, "permissions": {"allow": ["time__*"]}})
    data = tomllib.loads(path.read_text())
    assert data == {
        "agent": {"temperature": 0.3},
        "ui": {"theme": "llamachat-light"},
        "permissions": {"allow": ["time__*"]},
    }
    before = path.read_text()
    with pytest.raises(ConfigError):
        save_settings(path, {"agent": {"temperature": "hot"}})
    assert path.read_text() == before, "a rejected save must not touch the file"


def test_documented_defaults_round_trip() -> None:
    text = documented_defaults()
    assert "# Sampling temperature" in text
    from tui_agent.config import config_from_dict

    assert config_from_dict(tomllib.loads(text)) == Config()


def test_every_agent_field_is_documented() -> None:
    import dataclasses

    for f in dataclasses.fields(AgentConfig):
        assert f.metadata["doc"], f.name


def test_cli_config_init_show_path(tmp_path: Path) -> None:
    target = tmp_path / "c" / "config.toml"
    result = run_cli("config", "init", "--config", str(target))
    assert result.returncode == 0, result.stderr
    assert target.exists()
    again = run_cli("config", "init", "--config", str(target))
    assert again.returncode == 2 and "already exists" in again.stderr
    shown = run_cli("config", "show", "--config", str(target))
    assert shown.returncode == 0 and "[agent]" in shown.stdout
    assert run_cli("--config", str(target), "config", "path").stdout.strip() == str(target)


def test_cli_config_error_is_one_clear_line_and_nonzero(tmp_path: Path) -> None:
    bad = write(tmp_path, "[agent]\ntemperature = 'hot'\n")
    result = run_cli("config", "show", "--config", str(bad))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith(
        f"llamachat: error: {bad}: line 2: [agent] temperature: expected a number"
    )
    assert "hint:" in result.stderr
    debug = run_cli("config", "show", "--config", str(bad), "--debug")
    assert "Traceback" in debug.stderr


def test_cli_env_var_config_missing(tmp_path: Path) -> None:
    result = run_cli("config", "show", env={"LLAMACHAT_CONFIG": str(tmp_path / "missing.toml")})
    assert result.returncode == 2 and "LLAMACHAT_CONFIG" in result.stderr
