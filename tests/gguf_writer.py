"""Write small synthetic GGUF files for tests: headers with chosen metadata and tensors."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

_UINT32, _FLOAT32, _BOOL, _STRING, _ARRAY, _UINT64 = 4, 6, 7, 8, 9, 10


def _string(text: str) -> bytes:
    data = text.encode("utf-8")
    return struct.pack("<Q", len(data)) + data


def _value(value: Any) -> tuple[int, bytes]:
    if isinstance(value, bool):
        return _BOOL, struct.pack("<?", value)
    if isinstance(value, int):
        return (
            (_UINT32, struct.pack("<I", value))
            if value < 2**32
            else (_UINT64, struct.pack("<Q", value))
        )
    if isinstance(value, float):
        return _FLOAT32, struct.pack("<f", value)
    if isinstance(value, str):
        return _STRING, _string(value)
    if isinstance(value, list):
        item_type, _ = _value(value[0])
        body = b"".join(_value(v)[1] for v in value)
        return _ARRAY, struct.pack("<IQ", item_type, len(value)) + body
    raise TypeError(value)


def write_gguf(
    path: Path,
    metadata: dict[str, Any],
    tensors: list[tuple[str, list[int]]] = (),  # type: ignore[assignment]
    *,
    magic: bytes = b"GGUF",
    version: int = 3,
    truncate_to: int | None = None,
) -> Path:
    """F32 tensors with the given shapes, data zero-filled, aligned to 32 bytes."""
    out = bytearray(magic + struct.pack("<IQQ", version, len(tensors), len(metadata)))
    for key, value in metadata.items():
        vtype, body = _value(value)
        out += _string(key) + struct.pack("<I", vtype) + body
    offset = 0
    sizes = []
    for name, shape in tensors:
        out += _string(name) + struct.pack("<I", len(shape))
        out += b"".join(struct.pack("<Q", d) for d in shape)
        out += struct.pack("<IQ", 0, offset)
        size = 4
        for d in shape:
            size *= d
        sizes.append(size)
        offset += (size + 31) // 32 * 32
    out += b"\0" * ((-len(out)) % 32)
    out += b"\0" * offset
    data = bytes(out if truncate_to is None else out[:truncate_to])
    path.write_bytes(data)
    return path


def llama_like_metadata(arch: str = "llama", **overrides: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "general.architecture": arch,
        "general.name": f"synthetic-{arch}",
        f"{arch}.context_length": 2048,
        f"{arch}.block_count": 2,
        f"{arch}.embedding_length": 64,
        f"{arch}.attention.head_count": 4,
    }
    meta.update(overrides)
    return meta
