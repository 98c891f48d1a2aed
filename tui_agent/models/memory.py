"""Estimate the memory a model needs before loading it, and compare with what the machine has.

Loading a model that does not fit makes the machine swap or the kernel kill us, after a long wait.
An estimate from the header is cheap: the weights (the file, memory-mapped), the KV cache for the
context, and a compute buffer.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from tui_agent.errors import NotEnoughMemoryError
from tui_agent.models.gguf import GGUFInfo

_MIB = 1024 * 1024
# llama.cpp's compute buffers and the runtime: measured ~100-150 MiB for small models here.
_BASE_OVERHEAD = 160 * _MIB


@dataclass(frozen=True)
class MemoryEstimate:
    weights: int
    kv_cache: int
    overhead: int

    @property
    def total(self) -> int:
        return self.weights + self.kv_cache + self.overhead


def estimate_memory(info: GGUFInfo, n_ctx: int, n_batch: int = 512) -> MemoryEstimate:
    n_layer = info.arch_int("block_count") or 0
    n_embd = info.arch_int("embedding_length") or 0
    n_head = info.arch_int("attention.head_count") or 1
    n_head_kv = info.arch_int("attention.head_count_kv") or n_head
    head_dim = n_embd // n_head if n_head else 0
    key_len = info.arch_int("attention.key_length") or head_dim
    value_len = info.arch_int("attention.value_length") or head_dim
    # f16 K and V for every layer and every position of the context.
    kv = n_ctx * n_layer * n_head_kv * (key_len + value_len) * 2
    vocab = info.metadata.get("tokenizer.ggml.tokens", 0)
    vocab_size = vocab if isinstance(vocab, int) else 0
    # Logits for one batch plus activations scale with the batch.
    compute = n_batch * (vocab_size + 8 * n_embd) * 4
    return MemoryEstimate(weights=info.file_size, kv_cache=kv, overhead=_BASE_OVERHEAD + compute)


def available_memory() -> int | None:
    """Bytes the system can give us without swapping (MemAvailable), or None if unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def check_fits(
    info: GGUFInfo, n_ctx: int, n_batch: int, available: int | None = None
) -> MemoryEstimate:
    """Raise NotEnoughMemoryError when the estimate exceeds the available memory."""
    estimate = estimate_memory(info, n_ctx, n_batch)
    free = available_memory() if available is None else available
    if free is not None and estimate.total > free:
        kv_per_1k = estimate.kv_cache * 1024 // max(n_ctx, 1)
        raise NotEnoughMemoryError(
            f"not enough memory for {info.name}: needs about {format_bytes(estimate.total)}"
            f" (weights {format_bytes(estimate.weights)}, context of {n_ctx:,} tokens"
            f" {format_bytes(estimate.kv_cache)}), {format_bytes(free)} available",
            f"pick a smaller model (e.g. `--model tiny`) or a smaller context: each 1,024 tokens"
            f" of n_ctx cost {format_bytes(kv_per_1k)} (set [model] n_ctx in the config)",
        )
    return estimate


def format_bytes(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")
