from __future__ import annotations

from pathlib import Path

import pytest

from tests.gguf_writer import llama_like_metadata, write_gguf
from tui_agent.errors import (
    CorruptModelError,
    ModelNotFoundError,
    NotAGGUFError,
    NotEnoughMemoryError,
)
from tui_agent.models.gguf import read_gguf
from tui_agent.models.memory import check_fits, estimate_memory, format_bytes


def test_reads_metadata_and_tensors(tmp_path: Path) -> None:
    path = write_gguf(
        tmp_path / "m.gguf",
        llama_like_metadata(**{"tokenizer.chat_template": "{{x}}"}),
        [("tok_embd.weight", [64, 10]), ("out.weight", [64])],
    )
    info = read_gguf(path)
    assert info.architecture == "llama" and info.name == "synthetic-llama"
    assert info.tensor_count == 2 and info.chat_template == "{{x}}"
    assert info.arch_int("block_count") == 2


def test_real_demo_model_header(demo_gguf: Path) -> None:
    info = read_gguf(demo_gguf)
    assert info.architecture == "llama"
    assert info.tensor_count == 272
    assert info.chat_template and "<|im_start|>" in info.chat_template
    assert info.metadata["tokenizer.ggml.tokens"] == 49152  # counted, not kept


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError):
        read_gguf(tmp_path / "nope.gguf")


@pytest.mark.parametrize("content", [b"", b"GG", b"PK\x03\x04zipfile", b"<html>404</html>"])
def test_not_a_gguf(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "m.gguf"
    path.write_bytes(content)
    with pytest.raises(NotAGGUFError) as info:
        read_gguf(path)
    assert "not a GGUF model file" in str(info.value) and "b'GGUF'" in str(info.value)


def test_truncated_in_header(tmp_path: Path) -> None:
    path = write_gguf(tmp_path / "m.gguf", llama_like_metadata(), truncate_to=60)
    with pytest.raises(CorruptModelError) as info:
        read_gguf(path)
    assert "truncated" in str(info.value) and "download it again" in str(info.value)


def test_truncated_in_tensor_data(tmp_path: Path) -> None:
    full = write_gguf(tmp_path / "full.gguf", llama_like_metadata(), [("w", [1024, 64])])
    size = full.stat().st_size
    path = write_gguf(
        tmp_path / "m.gguf", llama_like_metadata(), [("w", [1024, 64])], truncate_to=size - 100
    )
    with pytest.raises(CorruptModelError) as info:
        read_gguf(path)
    assert f"its tensors need {size:,}" in str(info.value)


def test_real_model_cut_short(tmp_path: Path, demo_gguf: Path) -> None:
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(demo_gguf.read_bytes()[:50_000_000])
    with pytest.raises(CorruptModelError, match="truncated"):
        read_gguf(cut)


def test_corrupt_counts_and_versions(tmp_path: Path) -> None:
    with pytest.raises(CorruptModelError, match="unsupported GGUF version 7"):
        read_gguf(write_gguf(tmp_path / "v.gguf", {}, version=7))
    path = tmp_path / "c.gguf"
    path.write_bytes(
        b"GGUF" + (3).to_bytes(4, "little") + (2**60).to_bytes(8, "little") + bytes(16)
    )
    with pytest.raises(CorruptModelError, match="corrupt"):
        read_gguf(path)


def test_memory_estimate_grows_with_context(tmp_path: Path) -> None:
    info = read_gguf(write_gguf(tmp_path / "m.gguf", llama_like_metadata()))
    small, big = estimate_memory(info, 1024), estimate_memory(info, 8192)
    # 2 layers x 4 heads x (16 + 16) dims x 2 bytes per token
    assert small.kv_cache == 1024 * 2 * 4 * 32 * 2
    assert big.kv_cache == 8 * small.kv_cache


def test_not_enough_memory_says_what_is_needed_and_available(tmp_path: Path) -> None:
    meta = llama_like_metadata(
        **{
            "llama.block_count": 80,
            "llama.embedding_length": 8192,
            "llama.attention.head_count": 64,
        }
    )
    info = read_gguf(write_gguf(tmp_path / "m.gguf", meta))
    with pytest.raises(NotEnoughMemoryError) as err:
        check_fits(info, 131_072, 512, available=8 * 1024**3)
    message = str(err.value)
    assert "needs about" in message and "8.0 GiB available" in message
    assert "n_ctx" in message and "smaller model" in message
    assert check_fits(info, 512, 512, available=8 * 1024**3).total < 8 * 1024**3


def test_format_bytes() -> None:
    assert format_bytes(512) == "512 B"
    assert format_bytes(98_362_432) == "93.8 MiB"
    assert format_bytes(5 * 1024**4) == "5120.0 GiB"
