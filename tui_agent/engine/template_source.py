"""Where a chat template comes from when it is not the loaded model's own: the config's
``[model] chat_template`` (the template's text, or a file: a GGUF, a Hugging Face
``tokenizer_config.json``, or a template file), or an engine that says what it uses.

A model served by another engine is prompted with the template and special tokens given here,
so llamachat can render the prompt itself and read the model's calls as it does in-process.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tui_agent.errors import ConfigError, LlamachatError


@dataclass(frozen=True)
class TemplateSource:
    template: str
    bos_token: str = ""
    eos_token: str = ""
    origin: str = "config ([model] chat_template)"


def names_a_file(value: str) -> bool:
    """Whether ``[model] chat_template`` names a file rather than holding a template: one line
    with no Jinja in it."""
    return bool(value) and "\n" not in value and "{" not in value


def template_from_config(value: str) -> TemplateSource | None:
    """The template ``[model] chat_template`` gives, or None when it is empty."""
    if not value.strip():
        return None
    if not names_a_file(value):
        return TemplateSource(value)
    path = Path(value).expanduser()
    if not path.is_file():
        raise ConfigError(
            f"[model] chat_template names a file that does not exist: {path}",
            "give a .gguf, a tokenizer_config.json or a Jinja template file, or the template's"
            " text itself",
        )
    origin = f"{path.name} ([model] chat_template)"
    if path.suffix.lower() == ".gguf":
        return _from_gguf(path, origin)
    if path.suffix.lower() == ".json":
        return _from_tokenizer_config(path, origin)
    try:
        return TemplateSource(path.read_text(encoding="utf-8"), origin=origin)
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"cannot read the chat template in {path}: {exc}",
            "give a UTF-8 text file holding a Jinja chat template",
        ) from exc


def _from_gguf(path: Path, origin: str) -> TemplateSource:
    from tui_agent.models.gguf import read_gguf

    try:
        info = read_gguf(path, keep_vocabulary=True)
    except LlamachatError as exc:
        raise ConfigError(f"[model] chat_template: {exc.message}", exc.hint) from exc
    if not info.chat_template:
        raise ConfigError(
            f"{path} holds no chat template (tokenizer.chat_template)",
            "name another model file, or a tokenizer_config.json or template file",
        )
    tokens = info.metadata.get("tokenizer.ggml.tokens")

    def token(key: str) -> str:
        index = info.metadata.get(key)
        if not isinstance(tokens, list) or not isinstance(index, int):
            return ""
        return str(tokens[index]) if 0 <= index < len(tokens) else ""

    return TemplateSource(
        info.chat_template,
        token("tokenizer.ggml.bos_token_id"),
        token("tokenizer.ggml.eos_token_id"),
        origin,
    )


def _from_tokenizer_config(path: Path, origin: str) -> TemplateSource:
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ConfigError(
            f"cannot read {path} as a tokenizer config: {exc}",
            "give the model's tokenizer_config.json as Hugging Face publishes it",
        ) from exc
    template = config.get("chat_template") if isinstance(config, dict) else None
    if isinstance(template, list):  # several named templates: the default one
        template = next(
            (
                t.get("template")
                for t in template
                if isinstance(t, dict) and t.get("name") == "default"
            ),
            None,
        )
    if not isinstance(template, str) or not template:
        raise ConfigError(
            f"{path} holds no chat_template",
            "newer models keep it in chat_template.jinja beside it: name that file instead",
        )
    return TemplateSource(
        template, _token_text(config.get("bos_token")), _token_text(config.get("eos_token")), origin
    )


def _token_text(value: Any) -> str:
    """A special token as tokenizer_config.json writes it: text, or an object with its content."""
    if isinstance(value, dict):
        value = value.get("content")
    return value if isinstance(value, str) else ""
