"""`llamachat models list|check`."""

from __future__ import annotations

import argparse
import sys
import time

from tui_agent.config import Config, load_config
from tui_agent.engine.remote import is_remote
from tui_agent.events import DownloadProgress, Event, ModelLoadProgress
from tui_agent.models.catalog import model_choices
from tui_agent.models.memory import format_bytes
from tui_agent.models.sources import demo_model_path, parse_model_spec, resolve_spec


def list_models(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    rows = [
        [choice.spec, choice.where, format_bytes(size) if (size := choice.size) else "-"]
        for choice in model_choices(also=config.model.servers)
    ]
    print_table(["MODEL", "WHERE", "SIZE"], rows)
    configured = args.model or config.model.source
    print()
    if configured:
        if not is_remote(configured):
            parse_model_spec(configured)  # an unknown preset is an error here too
        print(f"configured: {configured}")
    else:
        print(
            "configured: nothing; the demo model is used when installed"
            f" ({'installed' if demo_model_path() else 'not installed'})"
        )
    return 0


def print_table(header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print(
            "  ".join(
                str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)
            ).rstrip()
        )


def print_progress(event: Event) -> None:
    """Progress on stderr, one updating line, so stdout stays clean for the results."""
    if isinstance(event, DownloadProgress):
        pct = f"{event.fraction:5.1%}" if event.fraction is not None else "  ?  "
        total = format_bytes(event.total) if event.total else "?"
        print(
            f"\rdownloading {event.filename}: {pct} {format_bytes(event.downloaded)}"
            f" of {total} at {format_bytes(int(event.bytes_per_sec))}/s",
            end="",
            file=sys.stderr,
        )
        if event.total and event.downloaded >= event.total:
            print(file=sys.stderr)
    elif isinstance(event, ModelLoadProgress) and sys.stderr.isatty():
        print(
            f"\rloading {event.model}: {event.fraction:4.0%}",
            end="" if event.fraction < 1 else "\n",
            file=sys.stderr,
        )


def _check_server(config: Config, url: str, tokens: int) -> int:
    """`models check URL`: the server's kind, model and context, and a timed reply."""
    import json

    from tui_agent.agent.remote_backend import RemoteChatBackend, RemoteCompletionsBackend
    from tui_agent.engine.generation import GREEDY, collect
    from tui_agent.session import llama_backend_loader

    backend = llama_backend_loader(config, url)(print_progress)
    assert isinstance(backend, RemoteChatBackend | RemoteCompletionsBackend)
    prompt = backend.render([{"role": "user", "content": "Say hello in one short sentence."}], [])
    sampling = GREEDY.__class__(**{**GREEDY.__dict__, "max_tokens": tokens})
    started = time.perf_counter()
    text, stats = collect(backend.stream(prompt, sampling, lambda: False))
    wall = time.perf_counter() - started
    print(f"server:         {url} ({backend.info.kind})")
    print(f"model:          {backend.info.model}")
    context = f"{backend.n_ctx:,} tokens" + ("" if backend.info.n_ctx else " (from [model] n_ctx)")
    print(f"context:        {context}")
    print(f"wire:           {backend.wire}")
    exact = isinstance(backend, RemoteCompletionsBackend) and backend.info.tokenizer
    counted = "the server's tokenizer" if exact else "estimated, or the server's usage figure"
    print(f"prompt:         {stats.prompt_tokens} tokens ({counted})")
    print(f"first token:    after {stats.time_to_first_token:.3f} s")
    print(
        f"generation:     {stats.generated_tokens} tokens in {wall:.2f} s,"
        f" {stats.tokens_per_second:.1f} tok/s"
    )
    print(f"reply:          {json.dumps(text.strip(), ensure_ascii=False)}")
    return 0


def check_model(args: argparse.Namespace) -> int:
    from tui_agent.agent.tool_calls import detect_family
    from tui_agent.engine.chat_template import renderer_for
    from tui_agent.engine.generation import GREEDY, collect, stream_completion
    from tui_agent.engine.resident import get_resident_model

    config = load_config(args.config)
    spec = args.spec or args.model or config.model.source
    if is_remote(spec):
        return _check_server(config, spec, args.tokens)
    source, path = resolve_spec(spec, print_progress)
    model = get_resident_model(path, config.model, print_progress)
    renderer = renderer_for(model)
    prompt = renderer.render([{"role": "user", "content": "Say hello in one short sentence."}])
    sampling = GREEDY.__class__(**{**GREEDY.__dict__, "max_tokens": args.tokens})
    started = time.perf_counter()
    text, stats = collect(stream_completion(model, prompt, sampling))
    wall = time.perf_counter() - started
    info = model.info
    resources = model.stats()
    print(f"model:          {info.name} ({source.describe()})")
    print(f"file:           {path} ({format_bytes(info.file_size)})")
    print(f"architecture:   {info.architecture}, GGUF v{info.version}, {info.tensor_count} tensors")
    print(f"context:        {model.settings.n_ctx:,} tokens, {model.settings.n_threads} threads")
    print(f"load time:      {model.load_seconds:.2f} s")
    print(
        f"prompt:         {stats.prompt_tokens} tokens, first token after {stats.time_to_first_token:.3f} s"
    )
    print(
        f"generation:     {stats.generated_tokens} tokens in {wall:.2f} s,"
        f" {stats.tokens_per_second:.1f} tok/s"
    )
    print(f"rss:            {format_bytes(resources.rss_bytes)}")
    print(f"reply:          {text.strip()!r}")
    print(
        f"chat template:  from {model.template_source}, tools {'supported' if renderer.supports_tools else 'described in the system prompt'}"
    )
    print(f"tool calls:     {detect_family(model.chat_template)} format (every format is parsed)")
    print("----- chat template -----")
    print(model.chat_template.rstrip())
    print("-------------------------")
    return 0
