"""The TOML config: typed sections, validation with errors that point at the file, saving.

The file lives at ``platformdirs.user_config_path("llamachat")/config.toml``; ``--config PATH``
and ``LLAMACHAT_CONFIG`` override it. Every key is declared once here, with its type, range and
documentation; validation, ``config init`` and ``config show`` all read those declarations.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
import tomllib
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import platformdirs
import tomlkit

from tui_agent.errors import ConfigError

CONFIG_ENV_VAR = "LLAMACHAT_CONFIG"


def _opt(
    default: Any,
    doc: str,
    *,
    lo: float | None = None,
    hi: float | None = None,
    choices: tuple[str, ...] = (),
    url: bool = False,
) -> Any:
    """A config field with its documentation, and its inclusive range (numbers), choices, or
    whether it is an http(s) URL (or empty)."""
    meta = {"doc": doc, "lo": lo, "hi": hi, "choices": choices, "url": url}
    if isinstance(default, list | dict):
        return field(default_factory=lambda: type(default)(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class ModelConfig:
    source: str = _opt(
        "",
        'Model to load: "tiny" | "small" | "medium", "demo", a .gguf path, "hf:org/repo/file.gguf"'
        ' or "org/repo:file.gguf" (globs allowed), or a server\'s OpenAI-compatible API URL'
        ' ("http://host:8080/v1": llama-server, vLLM, Ollama). Empty: the demo model when'
        " installed.",
    )
    n_ctx: int = _opt(4096, "Context size in tokens.", lo=128, hi=1_048_576)
    n_threads: int = _opt(0, "CPU threads for generation; 0 uses every core.", lo=0, hi=1024)
    adaptive_threads: bool = _opt(
        True,
        "Use fewer threads while other programs keep the cores busy (Linux): llama.cpp's threads"
        " wait for each other by spinning, and beside a busy compiler or browser generation with"
        " every thread collapsed to a fraction of its fair share.",
    )
    draft: str = _opt(
        "prompt-lookup",
        'Guess the next tokens from the text so far and check them in one step: "prompt-lookup"'
        " (replies that copy what the model read, such as a file returned with a change, are"
        " written faster, how much depends on the CPU: `llamachat bench --only drafting`; other"
        ' replies as fast as without) or "off". The reply is the one the model would write'
        " without it. Not for recurrent models nor server URLs.",
        choices=("prompt-lookup", "off"),
    )
    n_batch: int = _opt(512, "Prompt-processing batch size in tokens.", lo=1, hi=65_536)
    flash_attn: bool = _opt(True, "Use flash attention (faster, less memory for the context).")
    n_gpu_layers: int = _opt(0, "Layers to offload to a GPU; -1 offloads all.", lo=-1, hi=100_000)
    state_cache_mb: int = _opt(
        512,
        "Memory for saved model states (0 = off): a conversation you come back to (/new then"
        " back, a resume from the history) continues from its saved state instead of being"
        " read again from its start.",
        lo=0,
        hi=1_048_576,
    )
    state_disk_mb: int = _opt(
        2048,
        "Disk space for saved model states (0 = off), under the cache dir: a session resumed"
        " in a later run (-c, --resume, the history) and every new session's shared start"
        " (system prompt and tools) continue from a saved state; least recently used go first."
        " `llamachat cache info|clear` shows and frees it.",
        lo=0,
        hi=1_048_576,
    )
    chat_template: str = _opt(
        "",
        "A Jinja chat template to use instead of the model's own: its text, or a file holding"
        " one (a .gguf, a tokenizer_config.json or a template file). With a server URL it makes"
        " llamachat render the prompt itself (empty: the GGUF's, or the server's).",
    )
    tool_format: str = _opt(
        "auto",
        'How the model calls tools: "auto" (the template\'s own way when it has one, else'
        ' "tagged"), "tagged" (<tool_call> markup described in the system prompt) or "json"'
        " (every reply a JSON call or answer, held to it by a grammar: calls that always parse,"
        " for models that write no markup reliably; decoding is slower).",
        choices=("auto", "json", "tagged"),
    )
    api: str = _opt(
        "auto",
        'With a server URL: "completions" renders the prompt here with the model\'s chat template'
        ' (the server\'s, or chat_template) and reads tool calls as in-process; "chat" leaves'
        ' template and calls to the server; "auto" renders here when a template is known.',
        choices=("auto", "completions", "chat"),
    )
    servers: list[str] = _opt(
        [],
        "OpenAI-compatible API URLs that the model picker and `models list` offer beside the"
        ' local models, e.g. ["http://gpu-box:8080/v1"].',
    )
    remote_model: str = _opt(
        "",
        "With a server URL as the source: which of its models (empty: the only one it serves).",
    )
    api_key_env: str = _opt(
        "",
        "With a server URL: the environment variable that holds its API key (the key itself is"
        " never written anywhere).",
    )
    headers: dict[str, str] = _opt({}, "With a server URL: extra HTTP headers for every request.")
    connect_timeout_sec: float = _opt(
        5.0, "With a server URL: give up connecting after this long.", lo=0.1, hi=600
    )
    read_timeout_sec: float = _opt(
        120.0,
        "With a server URL: give up when the server sends nothing for this long.",
        lo=0.1,
        hi=86_400,
    )


@dataclass
class AgentConfig:
    max_iterations: int = _opt(
        20, "Model calls per prompt before the agent stops (0 = unlimited).", lo=0, hi=10_000
    )
    max_tokens_per_completion: int = _opt(
        1024, "Most tokens generated in one model call.", lo=1, hi=1_048_576
    )
    temperature: float = _opt(0.2, "Sampling temperature (0 = greedy).", lo=0.0, hi=5.0)
    top_k: int = _opt(40, "Top-k sampling (0 = off).", lo=0, hi=100_000)
    top_p: float = _opt(0.95, "Nucleus sampling threshold.", lo=0.0, hi=1.0)
    min_p: float = _opt(0.05, "Min-p sampling threshold.", lo=0.0, hi=1.0)
    repeat_penalty: float = _opt(1.1, "Penalty for repeated tokens (1 = off).", lo=0.0, hi=10.0)
    seed: int = _opt(-1, "Sampling seed (-1 = random).", lo=-1, hi=2**32 - 1)
    auto_compact: bool = _opt(True, "Summarize old messages when the context fills up.")
    compaction_threshold_pct: float = _opt(
        0.75, "Compact when the prompt passes this fraction of n_ctx.", lo=0.1, hi=0.95
    )
    compaction_keep_recent: int = _opt(
        6, "Most recent messages kept verbatim when compacting.", lo=0, hi=1000
    )
    n_batch: int = _opt(
        512, "Tokens evaluated per batch while processing a prompt.", lo=1, hi=65_536
    )
    stop_sequences: list[str] = _opt([], "Extra strings that end a model call.")


@dataclass
class UIConfig:
    theme: str = _opt("llamachat-dark", "Colour theme: a name from themes/ or your config dir.")


@dataclass
class ToolsConfig:
    workspace_root: str = _opt(
        "", "Directory the file tools may touch (empty: where llamachat started)."
    )
    max_output_chars: int = _opt(
        20_000, "Tool output longer than this is cut before the model sees it.", lo=100, hi=10**7
    )
    shell_timeout_sec: float = _opt(60.0, "run_shell gives up after this long.", lo=0.1, hi=86_400)


@dataclass
class PermissionsConfig:
    allow: list[str] = _opt(
        [], 'Tool calls that run without asking, e.g. "run_shell(git status*)".'
    )
    ask: list[str] = _opt([], "Tool calls that always ask first.")
    deny: list[str] = _opt([], "Tool calls that never run. deny > ask > allow.")


@dataclass
class HistoryConfig:
    db_path: str = _opt("", "Session database file (empty: the user data dir).")
    retention_days: int = _opt(
        0, "Delete sessions older than this many days (0 = keep forever).", lo=0, hi=100_000
    )


@dataclass
class ServeConfig:
    host: str = _opt(
        "127.0.0.1", "Address `llamachat serve` listens on; any but loopback needs token_env."
    )
    port: int = _opt(8765, "Port `llamachat serve` listens on (0: any free port).", lo=0, hi=65_535)
    token_env: str = _opt(
        "", "Environment variable holding the bearer token clients must send (empty: none)."
    )
    approval_timeout_sec: float = _opt(
        300.0,
        "A tool call waiting for approval over the API is denied after this long.",
        lo=1,
        hi=86_400,
    )
    max_request_bytes: int = _opt(
        1_048_576, "Largest request body accepted, in bytes.", lo=1024, hi=1 << 30
    )


@dataclass
class TracesConfig:
    otlp_endpoint: str = _opt(
        "",
        "Send each turn's spans to this OpenTelemetry collector (OTLP over HTTP), e.g."
        ' "http://localhost:4318/v1/traces". Empty: they stay in the history only. Headers come'
        " from OTEL_EXPORTER_OTLP_TRACES_HEADERS or OTEL_EXPORTER_OTLP_HEADERS.",
        url=True,
    )
    otlp_protocol: str = _opt(
        "http/json",
        "http/json, or http/protobuf (needs `pip install 'llamachat[otel]'`).",
        choices=("http/json", "http/protobuf"),
    )


@dataclass
class McpServerConfig:
    command: str = _opt("", "Program that starts a stdio server.")
    args: list[str] = _opt([], "Arguments for command.")
    env: dict[str, str] = _opt({}, "Extra environment variables for command.")
    cwd: str = _opt("", "Working directory for command.")
    url: str = _opt("", "Streamable HTTP endpoint (instead of command).")
    headers: dict[str, str] = _opt({}, "HTTP headers sent to url.")
    bearer_token_env_var: str = _opt("", "Environment variable holding a bearer token for url.")
    enabled: bool = _opt(True, "Start this server.")
    startup_timeout_sec: float = _opt(10.0, "Give up starting after this long.", lo=0.1, hi=3600)
    tool_timeout_sec: float = _opt(
        60.0, "Give up on one tool call after this long.", lo=0.1, hi=86_400
    )
    enabled_tools: list[str] = _opt([], "Only these tools (empty: all).")
    disabled_tools: list[str] = _opt([], "Never these tools.")
    trusted: bool = _opt(False, "Believe the server's read-only annotations.")


SECTIONS: dict[str, type] = {
    "model": ModelConfig,
    "agent": AgentConfig,
    "ui": UIConfig,
    "tools": ToolsConfig,
    "permissions": PermissionsConfig,
    "history": HistoryConfig,
    "serve": ServeConfig,
    "traces": TracesConfig,
}
MCP_SECTION = "mcp_servers"


@dataclass
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    agent: AgentConfig = field(default_factory=AgentConfig)
    ui: UIConfig = field(default_factory=UIConfig)
    tools: ToolsConfig = field(default_factory=ToolsConfig)
    permissions: PermissionsConfig = field(default_factory=PermissionsConfig)
    history: HistoryConfig = field(default_factory=HistoryConfig)
    serve: ServeConfig = field(default_factory=ServeConfig)
    traces: TracesConfig = field(default_factory=TracesConfig)
    mcp_servers: dict[str, McpServerConfig] = field(default_factory=dict)
    path: Path | None = None


def default_config_path() -> Path:
    return platformdirs.user_config_path("llamachat") / "config.toml"


def config_path(explicit: str | os.PathLike[str] | None = None) -> tuple[Path, bool]:
    """The config file to use and whether the user named it (a named file must exist)."""
    if explicit:
        return Path(explicit).expanduser(), True
    from_env = os.environ.get(CONFIG_ENV_VAR)
    if from_env:
        return Path(from_env).expanduser(), True
    return default_config_path(), False


def load_config(explicit: str | os.PathLike[str] | None = None) -> Config:
    """Load and validate the config; a missing default file means all defaults."""
    path, named = config_path(explicit)
    if not path.exists():
        if named:
            raise ConfigError(
                f"config file not found: {path}",
                f"create it with `llamachat config init --config {path}`, or fix the path"
                f" (from {'--config' if explicit else CONFIG_ENV_VAR})",
            )
        return Config(path=path)
    text = _read_text(path)
    raw = _parse_toml(path, text)
    config = config_from_dict(raw, path, text)
    return config


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path}: not UTF-8 text (byte {exc.start})", "save the config file as UTF-8"
        ) from exc
    except OSError as exc:
        raise ConfigError(
            f"{path}: cannot read: {exc.strerror}", "check the file's permissions"
        ) from exc


_TOML_POS = re.compile(r"\(at line (\d+), column (\d+)\)")


def _parse_toml(path: Path, text: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        msg = str(exc)
        pos = _TOML_POS.search(msg)
        where = f"line {pos.group(1)}, column {pos.group(2)}: " if pos else ""
        reason = _TOML_POS.sub("", msg).strip()
        raise ConfigError(
            f"{path}: {where}TOML syntax error: {reason}",
            "fix the line above; strings need quotes, tables look like [section]",
        ) from exc


def config_from_dict(raw: Mapping[str, Any], path: Path | None = None, text: str = "") -> Config:
    """Build a validated Config from parsed TOML; errors name the file, key and line."""
    where = _Locator(path, text)
    config = Config(path=path)
    for section, value in raw.items():
        if section == MCP_SECTION:
            config.mcp_servers = _mcp_servers(value, where)
        elif section in SECTIONS:
            table = _expect_table(value, section, where)
            setattr(config, section, _build_section(SECTIONS[section], table, section, where))
        else:
            raise where.error(
                section,
                None,
                f"unknown section [{section}]",
                _suggest(section, [*SECTIONS, MCP_SECTION]),
            )
    for url in config.model.servers:
        if not url.startswith(("http://", "https://")):
            raise where.error(
                "model",
                "servers",
                f"[model] servers: {url!r} is not a server's URL",
                'give each as its API base, e.g. servers = ["http://gpu-box:8080/v1"]',
            )
    return config


def _mcp_servers(value: Any, where: _Locator) -> dict[str, McpServerConfig]:
    servers: dict[str, McpServerConfig] = {}
    for name, table in _expect_table(value, MCP_SECTION, where).items():
        section = f"{MCP_SECTION}.{name}"
        server = _build_section(
            McpServerConfig, _expect_table(table, section, where), section, where
        )
        if name == "builtin":
            raise where.error(
                section,
                None,
                "the MCP server name `builtin` is taken by llamachat's built-in tools",
                f"rename [{section}] to something else, e.g. [{MCP_SECTION}.my-tools]",
            )
        if bool(server.command) == bool(server.url):
            raise where.error(
                section,
                None,
                f"[{section}] needs exactly one of `command` (stdio) or `url` (HTTP)",
                'add command = "..." for a local server or url = "http://..." for a remote one',
            )
        servers[name] = server
    return servers


def _expect_table(value: Any, section: str, where: _Locator) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise where.error(
            section, None, f"`{section}` must be a table", f"write it as a [{section}] section"
        )
    return value


_T = TypeVar("_T")


def _build_section(cls: type[_T], table: Mapping[str, Any], section: str, where: _Locator) -> _T:
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    values: dict[str, Any] = {}
    for key, value in table.items():
        if key not in fields:
            raise where.error(
                section, key, f"[{section}] unknown key `{key}`", _suggest(key, list(fields))
            )
        values[key] = _check_value(fields[key], value, section, where)
    return cls(**values)


def _check_value(f: dataclasses.Field[Any], value: Any, section: str, where: _Locator) -> Any:
    expected = _type_name(f)
    ok = _has_type(f.type, value)
    if not ok:
        raise where.error(
            section,
            f.name,
            f"[{section}] {f.name}: expected {expected}, got {_describe(value)}",
            f"{f.metadata['doc']} Example: {f.name} = {_toml_value(_default(f))}",
        )
    lo, hi = f.metadata.get("lo"), f.metadata.get("hi")
    if lo is not None and hi is not None and not lo <= value <= hi:
        raise where.error(
            section,
            f.name,
            f"[{section}] {f.name}: {value} is out of range, expected {lo} to {hi}",
            str(f.metadata["doc"]),
        )
    if f.metadata.get("url") and value and not _is_http_url(value):
        raise where.error(
            section,
            f.name,
            f"[{section}] {f.name}: {value!r} is not an http:// or https:// URL",
            str(f.metadata["doc"]),
        )
    choices = f.metadata.get("choices")
    if choices and value not in choices:
        raise where.error(
            section,
            f.name,
            f"[{section}] {f.name}: {value!r} is not one of {', '.join(map(repr, choices))}",
            str(f.metadata["doc"]),
        )
    return float(value) if f.type == "float" else value


def _is_http_url(value: str) -> bool:
    parts = urllib.parse.urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def _has_type(type_name: Any, value: Any) -> bool:
    if type_name == "bool":
        return isinstance(value, bool)
    if type_name == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if type_name == "float":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if type_name == "str":
        return isinstance(value, str)
    if type_name == "list[str]":
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    if type_name == "dict[str, str]":
        return isinstance(value, dict) and all(isinstance(v, str) for v in value.values())
    raise AssertionError(f"config field type {type_name!r} has no validator")


def _type_name(f: dataclasses.Field[Any]) -> str:
    return {
        "bool": "true or false",
        "int": "a whole number",
        "float": "a number",
        "str": "a string",
        "list[str]": "a list of strings",
        "dict[str, str]": "a table of strings",
    }[str(f.type)]


def _describe(value: Any) -> str:
    kind = {bool: "a boolean", int: "a whole number", float: "a number", str: "a string"}.get(
        type(value), "a list" if isinstance(value, list) else "a table"
    )
    return f"{kind} ({_toml_value(value)})"


def _toml_value(value: Any) -> str:
    if isinstance(value, dict):
        inner = ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items())
        return "{ " + inner + " }" if inner else "{}"
    return str(tomlkit.item(value).as_string())


def _default(f: dataclasses.Field[Any]) -> Any:
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return f.default


def _suggest(name: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(name, choices, n=1)
    known = ", ".join(choices)
    return f"did you mean `{close[0]}`? Known: {known}" if close else f"known: {known}"


@dataclass
class _Locator:
    """Finds the line of a section or key in the config text, for error messages."""

    path: Path | None
    text: str

    def error(self, section: str, key: str | None, message: str, hint: str) -> ConfigError:
        line = self._line_of(section, key)
        prefix = f"{self.path or 'config'}" + (f": line {line}" if line else "")
        return ConfigError(f"{prefix}: {message}", hint)

    def _line_of(self, section: str, key: str | None) -> int | None:
        current = ""
        header = re.compile(r"^\s*\[+\s*([^\]]+?)\s*\]+")
        for number, line in enumerate(self.text.splitlines(), start=1):
            match = header.match(line)
            if match:
                current = match.group(1).replace('"', "").replace(" ", "")
                if key is None and current == section:
                    return number
                continue
            if (
                key is not None
                and current == section
                and re.match(rf"^\s*\"?{re.escape(key)}\"?\s*=", line)
            ):
                return number
        return None


def config_to_dict(config: Config) -> dict[str, Any]:
    """The config as plain TOML-ready data (what `config show` prints)."""
    data: dict[str, Any] = {name: dataclasses.asdict(getattr(config, name)) for name in SECTIONS}
    data[MCP_SECTION] = {name: dataclasses.asdict(s) for name, s in config.mcp_servers.items()}
    return data


def documented_defaults() -> str:
    """A config file with every key at its default, each preceded by its documentation."""
    lines = ["# llamachat configuration. Every key is optional; these are the defaults.", ""]
    for name, cls in SECTIONS.items():
        lines.append(f"[{name}]")
        for f in dataclasses.fields(cls):
            lines.append(f"# {f.metadata['doc']}")
            lines.append(f"{f.name} = {_toml_value(_default(f))}")
        lines.append("")
    lines.append("# MCP servers, one table each:")
    lines.append("# [mcp_servers.time]")
    lines.append('# command = "uvx"')
    lines.append('# args = ["mcp-server-time"]')
    return "\n".join(lines) + "\n"


def save_settings(
    path: Path, updates: Mapping[str, Mapping[str, Any]], replace: bool = False
) -> None:
    """Merge ``updates`` ({section: {key: value}}) into the file, keeping every other key and
    the file's comments and layout (a hand-written config stays as its author wrote it).

    With ``replace`` each named section is replaced whole instead of merged key by key.

    The merged result is validated before anything is written, and the write is atomic
    (temp file + rename), so a bad value or a crash never leaves a broken config behind.
    """
    document = tomlkit.document()
    if path.exists():
        text = _read_text(path)
        _parse_toml(path, text)  # its errors name the line; tomlkit's would not read as well
        document = tomlkit.parse(text)
    for section, values in updates.items():
        *parents, last = section.split(".")
        target: Any = document
        for part in parents:
            if part not in target:
                # [mcp_servers.name] headers, without an empty [mcp_servers] above them.
                target[part] = tomlkit.table(is_super_table=True)
            target = target[part]
        if replace or last not in target:
            table = tomlkit.table()
            table.update(values)
            target[last] = table
        else:
            for key, value in values.items():
                target[last][key] = value
    config_from_dict(document.unwrap(), path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(tomlkit.dumps(document), encoding="utf-8")
    os.replace(tmp, path)
