"""`llamachat bench [--model M] [--json] [--quick] [--only SECTIONS] [--json-file PATH]`."""

from __future__ import annotations

import argparse
from pathlib import Path

from tui_agent.bench.engine_bench import machine_description
from tui_agent.bench.figures import render_json, render_table
from tui_agent.bench.runner import FULL, QUICK, run, stderr_progress
from tui_agent.config import load_config


def bench(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    only = frozenset(name.strip() for name in (args.only or "").split(",") if name.strip())
    figures = run(config, args.model, QUICK if args.quick else FULL, stderr_progress, only)
    machine = machine_description()
    print(render_json(figures, machine) if args.json else render_table(figures, machine))
    if args.json_file:
        Path(args.json_file).expanduser().write_text(
            render_json(figures, machine) + "\n", encoding="utf-8"
        )
    return 1 if any(f.value is None and "failed" in f.name for f in figures) else 0
