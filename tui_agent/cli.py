"""The `llamachat` command.

Heavy libraries (llama_cpp, textual, mcp, huggingface_hub) are imported inside the commands that
need them, so `--version` and `--help` answer at once.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Callable, Sequence

from tui_agent import __version__
from tui_agent.errors import LlamachatError

Handler = Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="llamachat",
        description="A local-first terminal chat agent on one resident GGUF model.",
        epilog="Run `llamachat COMMAND --help` for a command's options.",
    )
    parser.add_argument("--version", action="version", version=f"llamachat {__version__}")
    _add_common(parser)
    parser.add_argument(
        "-p", "--prompt", help="run one prompt headless and print the reply ('-' reads stdin)"
    )
    parser.add_argument("--system", help="system prompt for this run")
    parser.add_argument("--max-iterations", type=int, help="model calls per prompt (0 = unlimited)")
    parser.add_argument(
        "--force-tool",
        action="append",
        default=[],
        metavar="TOOL",
        help="make the first model call a call of TOOL (grammar-constrained); repeatable",
    )
    _add_rule_flags(parser)
    parser.add_argument(
        "-c",
        "--continue",
        dest="continue_session",
        action="store_true",
        help="continue the most recent session",
    )
    parser.add_argument(
        "-r",
        "--resume",
        metavar="ID",
        help="resume the session with this id (a unique prefix is enough)",
    )
    parser.add_argument(
        "--output-format",
        choices=("text", "json", "stream-json"),
        default="text",
        help="headless output: text (default), json (one object at the end) or stream-json (one event per line)",
    )
    parser.add_argument(
        "--no-save", action="store_true", help="do not save this run to the history"
    )
    parser.set_defaults(handler=_run_default)
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    config = commands.add_parser("config", help="show, locate or create the config file")
    config_commands = config.add_subparsers(
        title="config commands", metavar="ACTION", required=True
    )
    for name, helptext in (
        ("path", "print the config file's path"),
        ("show", "print the effective configuration (defaults filled in)"),
        ("init", "write a documented config file with every default"),
    ):
        sub = config_commands.add_parser(name, help=helptext)
        _add_common(sub)
        sub.set_defaults(handler=_lazy("tui_agent.commands.config_cmd", name))
        if name == "init":
            sub.add_argument("--force", action="store_true", help="overwrite an existing file")

    models = commands.add_parser("models", help="list models or check that one loads and runs")
    model_commands = models.add_subparsers(title="models commands", metavar="ACTION", required=True)
    listing = model_commands.add_parser(
        "list", help="presets, the demo model, GGUFs in the HF cache"
    )
    _add_common(listing)
    listing.set_defaults(handler=_lazy("tui_agent.commands.models_cmd", "list_models"))
    check = model_commands.add_parser(
        "check",
        help="load a model (or ask a server URL), generate a few tokens, print load time, tok/s,"
        " RSS, template",
    )
    _add_common(check)
    check.add_argument(
        "spec", nargs="?", metavar="MODEL", help="model to check (default: the configured one)"
    )
    check.add_argument("--tokens", type=int, default=32, help="tokens to generate (default 32)")
    check.set_defaults(handler=_lazy("tui_agent.commands.models_cmd", "check_model"))
    tools = commands.add_parser(
        "tools", help="list the tools or call one (through the permission gate)"
    )
    tool_commands = tools.add_subparsers(title="tools commands", metavar="ACTION", required=True)
    tools_list = tool_commands.add_parser("list", help="every tool with its server and permission")
    _add_common(tools_list)
    tools_list.set_defaults(handler=_lazy("tui_agent.commands.tools_cmd", "list_tools"))
    tools_call = tool_commands.add_parser("call", help="call one tool with JSON arguments")
    _add_common(tools_call)
    _add_rule_flags(tools_call)
    tools_call.add_argument("name", help="tool name, e.g. read_file or time__get_current_time")
    tools_call.add_argument(
        "arguments", nargs="?", default="{}", help='JSON object, e.g. \'{"path": "README.md"}\''
    )
    tools_call.set_defaults(handler=_lazy("tui_agent.commands.tools_cmd", "call_tool"))

    history = commands.add_parser(
        "history", help="saved sessions: list, show, search, export, rename, delete"
    )
    history_commands = history.add_subparsers(
        title="history commands", metavar="ACTION", required=True
    )
    module = "tui_agent.commands.history_cmd"
    h_list = history_commands.add_parser("list", help="sessions, most recent first")
    h_list.add_argument("--limit", type=int, default=50)
    h_list.add_argument("--offset", type=int, default=0)
    h_list.set_defaults(handler=_lazy(module, "list_history"))
    h_show = history_commands.add_parser("show", help="one session as Markdown (or --json)")
    h_show.add_argument("id")
    h_show.add_argument(
        "--trace",
        action="store_true",
        help="the turns as a tree of model and tool calls with timings",
    )
    h_show.set_defaults(handler=_lazy(module, "show_history"))
    h_search = history_commands.add_parser(
        "search", help="full-text search over every message and tool result"
    )
    h_search.add_argument("query")
    h_search.add_argument("--limit", type=int, default=20)
    h_search.set_defaults(handler=_lazy(module, "search_history"))
    h_export = history_commands.add_parser("export", help="write a session as Markdown or JSON")
    h_export.add_argument("id")
    h_export.add_argument(
        "--format",
        choices=("markdown", "json", "otlp-json"),
        default="markdown",
        help="markdown, json (every entry), otlp-json (the turns' spans as OpenTelemetry JSON)",
    )
    h_export.add_argument("-o", "--output", help="file to write (default: stdout)")
    h_export.set_defaults(handler=_lazy(module, "export_history"))
    h_rename = history_commands.add_parser("rename", help="give a session a new title")
    h_rename.add_argument("id")
    h_rename.add_argument("title")
    h_rename.set_defaults(handler=_lazy(module, "rename_history"))
    h_delete = history_commands.add_parser("delete", help="delete a session (asks first)")
    h_delete.add_argument("id")
    h_delete.add_argument("-y", "--yes", action="store_true", help="do not ask")
    h_delete.set_defaults(handler=_lazy(module, "delete_history"))
    for sub in (h_list, h_show, h_search, h_export, h_rename, h_delete):
        _add_common(sub)
        if sub in (h_list, h_show, h_search):
            sub.add_argument("--json", action="store_true", help="machine-readable output")

    bench = commands.add_parser(
        "bench", help="measure llamachat against the bare engine on this machine"
    )
    _add_common(bench)
    bench.add_argument("--json", action="store_true", help="machine-readable output")
    bench.add_argument(
        "--quick",
        action="store_true",
        help="fewer repetitions (about 3.5 minutes on the demo model)",
    )
    bench.add_argument(
        "--only",
        metavar="SECTIONS",
        help='run only these sections, comma-separated (e.g. "drafting,busy CPU")',
    )
    bench.add_argument(
        "--json-file",
        metavar="PATH",
        help="also write the JSON report to PATH (the table still prints), to keep or compare",
    )
    bench.set_defaults(handler=_lazy("tui_agent.commands.bench_cmd", "bench"))

    evaluate = commands.add_parser(
        "eval", help="see how well a model calls tools through llamachat"
    )
    eval_commands = evaluate.add_subparsers(title="eval suites", metavar="SUITE", required=True)
    eval_tools = eval_commands.add_parser(
        "tools", help="six tool tasks (MCP call, list, read, write, no tool, two steps)"
    )
    _add_common(eval_tools)
    eval_tools.add_argument("--json", action="store_true", help="machine-readable output")
    eval_tools.add_argument(
        "--tool-format",
        choices=("auto", "tagged", "json"),
        help="how the model calls tools, instead of [model] tool_format (compare them)",
    )
    eval_tools.set_defaults(handler=_lazy("tui_agent.commands.eval_cmd", "eval_tools"))

    cache = commands.add_parser(
        "cache", help="model states saved on disk for instant resume: how much, free them"
    )
    cache_commands = cache.add_subparsers(title="cache commands", metavar="ACTION", required=True)
    cache_info = cache_commands.add_parser("info", help="where, how many, how big, per model")
    _add_common(cache_info)
    cache_info.add_argument("--json", action="store_true", help="machine-readable output")
    cache_info.set_defaults(handler=_lazy("tui_agent.commands.cache_cmd", "cache_info"))
    cache_clear = cache_commands.add_parser("clear", help="remove every saved model state")
    _add_common(cache_clear)
    cache_clear.set_defaults(handler=_lazy("tui_agent.commands.cache_cmd", "cache_clear"))

    serve = commands.add_parser(
        "serve", help="serve the agent over HTTP (OpenAI Responses API, streaming, approvals)"
    )
    _add_common(serve)
    _add_rule_flags(serve)
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1: this machine only)")
    serve.add_argument("--port", type=int, help="port (default 8765; 0 takes any free port)")
    serve.add_argument(
        "--token-env",
        metavar="VAR",
        help="require 'Authorization: Bearer $VAR' (needed for any address but loopback)",
    )
    serve.add_argument(
        "--approval-timeout",
        type=float,
        metavar="SECONDS",
        help="deny a tool call whose approval request gets no answer in this long (default 300)",
    )
    serve.add_argument("--system", help="system prompt for new sessions")
    serve.add_argument("--no-save", action="store_true", help="do not save sessions to the history")
    serve.set_defaults(handler=_lazy("tui_agent.commands.serve_cmd", "serve"))

    mcp = commands.add_parser(
        "mcp", help="MCP servers: list them, import a Claude Desktop / .mcp.json file"
    )
    mcp_commands = mcp.add_subparsers(title="mcp commands", metavar="ACTION", required=True)
    mcp_list = mcp_commands.add_parser("list", help="servers, status, protocol version and tools")
    _add_common(mcp_list)
    mcp_list.set_defaults(handler=_lazy("tui_agent.commands.mcp_cmd", "list_servers"))
    mcp_import = mcp_commands.add_parser(
        "import", help='add the servers of a {"mcpServers": {...}} JSON file'
    )
    _add_common(mcp_import)
    mcp_import.add_argument("file", help="claude_desktop_config.json, .mcp.json or similar")
    mcp_import.add_argument(
        "--force", action="store_true", help="replace servers that already exist"
    )
    mcp_import.set_defaults(handler=_lazy("tui_agent.commands.mcp_cmd", "import_servers"))
    return parser


def _add_rule_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--allow",
        action="append",
        default=[],
        metavar="RULE",
        help="allow tool calls matching RULE for this run, e.g. 'run_shell(git status*)'",
    )
    parser.add_argument(
        "--deny",
        action="append",
        default=[],
        metavar="RULE",
        help="never run tool calls matching RULE in this run",
    )


def _add_common(parser: argparse.ArgumentParser) -> None:
    # Accepted before or after the subcommand; SUPPRESS keeps a subparser from resetting the value.
    parser.add_argument(
        "--config",
        metavar="PATH",
        default=argparse.SUPPRESS,
        help="config file (default: $LLAMACHAT_CONFIG or the user config dir)",
    )
    parser.add_argument(
        "-m",
        "--model",
        metavar="MODEL",
        default=argparse.SUPPRESS,
        help="model: tiny|small|medium, a .gguf path, hf:org/repo/file.gguf or org/repo:file.gguf",
    )
    parser.add_argument(
        "--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks"
    )


def _lazy(module: str, function: str) -> Handler:
    def handler(args: argparse.Namespace) -> int:
        import importlib

        result: int = getattr(importlib.import_module(module), function)(args)
        return result

    return handler


def _run_default(args: argparse.Namespace) -> int:
    if args.prompt is not None:
        return _lazy("tui_agent.commands.headless", "run_headless")(args)
    return _lazy("tui_agent.commands.chat", "run_chat")(args)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    for name, default in (("config", None), ("model", None), ("debug", False)):
        if not hasattr(args, name):
            setattr(args, name, default)
    if args.handler is _run_default and args.prompt is None:
        return _handle(args)  # the chat: Textual draws on the terminal itself
    from tui_agent.printable import terminal_safe_output

    try:
        with terminal_safe_output():
            return _handle(args)
    except BrokenPipeError:
        return _reader_went_away()


def _reader_went_away() -> int:
    """Output piped into a reader that stopped early (`| head`): end quietly, as `cat` does,
    with the status a shell reports for SIGPIPE. Python would otherwise print a traceback, and
    another when it flushes stdout at exit."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return 141  # 128 + SIGPIPE


def _handle(args: argparse.Namespace) -> int:
    try:
        return int(args.handler(args))
    except LlamachatError as exc:
        if args.debug:
            traceback.print_exc()
        print(f"llamachat: error: {exc.message}", file=sys.stderr)
        if exc.hint:
            print(f"  hint: {exc.hint}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("llamachat: interrupted", file=sys.stderr)
        return 130
