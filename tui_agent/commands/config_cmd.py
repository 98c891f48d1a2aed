"""`llamachat config path|show|init`."""

from __future__ import annotations

import argparse

import tomlkit

from tui_agent.config import config_path, config_to_dict, documented_defaults, load_config
from tui_agent.errors import ConfigError


def path(args: argparse.Namespace) -> int:
    target, _ = config_path(args.config)
    print(target)
    return 0


def show(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    exists = config.path is not None and config.path.exists()
    origin = str(config.path) if exists else f"{config.path} (not created yet: all defaults)"
    print(f"# effective configuration from {origin}")
    print(tomlkit.dumps(config_to_dict(config)), end="")
    return 0


def init(args: argparse.Namespace) -> int:
    target, _ = config_path(args.config)
    if target.exists() and not args.force:
        raise ConfigError(
            f"config file already exists: {target}",
            "edit it, or pass --force to replace it with the documented defaults",
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(documented_defaults(), encoding="utf-8")
    print(f"wrote {target}")
    return 0
