"""``[model] chat_template``: the template's text, or a file that holds one (a GGUF, a
tokenizer_config.json, a template file); a bad file is a config error that names it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tui_agent.engine.template_source import names_a_file, template_from_config
from tui_agent.errors import ConfigError

CHATML = "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"


def test_text_is_the_template_and_empty_is_none() -> None:
    assert template_from_config("  ") is None
    source = template_from_config(CHATML)
    assert source is not None and source.template == CHATML and source.bos_token == ""
    assert not names_a_file(CHATML) and names_a_file("~/models/qwen.gguf")


def test_a_gguf_gives_its_template_and_special_tokens(demo_gguf: Path) -> None:
    source = template_from_config(str(demo_gguf))
    assert source is not None and "<|im_start|>" in source.template
    assert (source.bos_token, source.eos_token) == ("<|im_start|>", "<|im_end|>")
    assert source.origin.startswith(demo_gguf.name)


def test_a_tokenizer_config_in_either_shape(tmp_path: Path) -> None:
    plain = tmp_path / "tokenizer_config.json"
    plain.write_text(json.dumps({"chat_template": CHATML, "bos_token": "<s>", "eos_token": "</s>"}))
    source = template_from_config(str(plain))
    assert source is not None and (source.template, source.bos_token) == (CHATML, "<s>")
    named = tmp_path / "named.json"
    named.write_text(
        json.dumps(
            {
                "chat_template": [
                    {"name": "tool_use", "template": "T"},
                    {"name": "default", "template": CHATML},
                ],
                "eos_token": {"content": "<|end|>", "special": True},
            }
        )
    )
    source = template_from_config(str(named))
    assert source is not None and source.template == CHATML and source.eos_token == "<|end|>"


def test_a_template_file(tmp_path: Path) -> None:
    jinja = tmp_path / "chat_template.jinja"
    jinja.write_text(CHATML)
    source = template_from_config(str(jinja))
    assert source is not None and source.template == CHATML


@pytest.mark.parametrize(
    ("name", "content", "says"),
    [
        ("missing.gguf", None, "does not exist"),
        ("tokenizer_config.json", "{not json", "as a tokenizer config"),
        ("no_template.json", '{"bos_token": "<s>"}', "holds no chat_template"),
        ("latin1.jinja", b"\xff\xfe{{ x }}", "UTF-8"),
        ("fake.gguf", b"not a gguf at all", "not a GGUF"),
    ],
)
def test_a_bad_file_is_a_config_error_naming_it(
    tmp_path: Path, name: str, content: str | bytes | None, says: str
) -> None:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    with pytest.raises(ConfigError) as raised:
        template_from_config(str(path))
    assert says in str(raised.value) + raised.value.hint and (name in str(raised.value))


def test_headless_with_a_missing_template_file_is_exit_2_before_any_load(
    tmp_path: Path, demo_gguf: Path
) -> None:
    config = tmp_path / "c.toml"
    config.write_text(f'[model]\nchat_template = "{tmp_path / "gone.jinja"}"\n')
    result = run_cli("-m", str(demo_gguf), "-p", "hi", "--no-save", "--config", str(config))
    assert result.returncode == 2 and "gone.jinja" in result.stderr
    assert "does not exist" in result.stderr and "Traceback" not in result.stderr
