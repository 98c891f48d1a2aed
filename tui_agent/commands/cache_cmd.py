"""`llamachat cache info|clear`: the model states saved on disk (engine/state_files.py)."""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

from tui_agent.commands.models_cmd import print_table
from tui_agent.config import load_config
from tui_agent.engine.state_files import StateFile, remove_states, state_files, states_root
from tui_agent.models.memory import format_bytes


def cache_info(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    root = states_root()
    files = list(state_files(root))
    total = sum(f.file_size for f in files)
    budget = config.model.state_disk_mb * 2**20
    if args.json:
        record = {
            "path": str(root),
            "budget_bytes": budget,
            "bytes": total,
            "states": [_as_dict(f) for f in files],
        }
        print(json.dumps(record, ensure_ascii=False, indent=2))
        return 0
    limit = (
        f"of {format_bytes(budget)} ([model] state_disk_mb)"
        if budget
        else "(saving is off: [model] state_disk_mb = 0)"
    )
    print(f"saved model states in {root}")
    print(f"{len(files)} state(s), {format_bytes(total)} {limit}")
    if files:
        print()
        print_table(["MODEL", "N_CTX", "STATES", "TOKENS", "SIZE"], _per_model(files))
    return 0


def cache_clear(args: argparse.Namespace) -> int:
    load_config(args.config)  # a broken config is said before anything is removed
    count, freed = remove_states()
    print(f"removed {count} saved state(s), {format_bytes(freed)} freed")
    return 0


def _per_model(files: list[StateFile]) -> list[list[str]]:
    groups: dict[tuple[str, int], list[StateFile]] = defaultdict(list)
    for f in files:
        groups[(Path(f.identity.get("model", "?")).name, int(f.identity.get("n_ctx", 0)))].append(f)
    return [
        [
            name,
            str(n_ctx),
            str(len(group)),
            f"{sum(len(f.tokens) for f in group):,}",
            format_bytes(sum(f.file_size for f in group)),
        ]
        for (name, n_ctx), group in sorted(groups.items())
    ]


def _as_dict(f: StateFile) -> dict[str, object]:
    return {
        "file": str(f.path),
        "session": f.session,
        "tokens": len(f.tokens),
        "bytes": f.file_size,
        "saved_at": f.saved_at,
        "model": f.identity.get("model"),
        "n_ctx": f.identity.get("n_ctx"),
    }
