"""`llamachat eval tools [--model M] [--json]`: how well this model calls tools through llamachat."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys

from tui_agent.agent.backend import ModelBackend
from tui_agent.bench.engine_bench import in_fresh_thread
from tui_agent.bench.tool_eval import TaskResult, one_line, run_suite
from tui_agent.commands.models_cmd import print_progress, print_table
from tui_agent.config import load_config
from tui_agent.printable import printable
from tui_agent.session import llama_backend_loader


def eval_tools(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    if args.tool_format:
        config.model = dataclasses.replace(config.model, tool_format=args.tool_format)
    load = llama_backend_loader(config, args.model)

    def run() -> tuple[ModelBackend, list[TaskResult]]:
        backend = load(print_progress)
        return backend, run_suite(backend, config, progress=_report)

    backend, results = in_fresh_thread(run)
    model, tool_format = backend.name, backend.tool_format
    passed = sum(r.passed for r in results)
    if args.json:
        rows = [dataclasses.asdict(r) for r in results]
        report = {"model": model, "tool_format": tool_format, "passed": passed, "tasks": rows}
        print(json.dumps(report, indent=2))
        return 0
    print(f"\n{model} (tool format: {tool_format}): {passed}/{len(results)} tasks passed")
    print_table(
        ["TASK", "RESULT", "REASON", "TIME", "CALLS", "ANSWER"],
        [
            [
                r.task,
                "pass" if r.passed else "FAIL",
                printable(r.reason),
                f"{r.seconds:.1f} s",
                ", ".join(r.calls) or "-",
                printable(one_line(r.answer, 40)),
            ]
            for r in results
        ],
    )
    return 0


def _report(result: TaskResult) -> None:
    print(
        f"{result.task}: {'pass' if result.passed else 'fail'} ({result.seconds:.1f} s)",
        file=sys.stderr,
    )
