"""Read a GGUF file's header before llama.cpp sees it.

llama.cpp answers every bad file with the same "failed to load model". Reading the header
ourselves lets us say what is wrong: not a GGUF at all, truncated, or corrupt, and gives the
numbers the memory estimate needs. Large arrays (the tokenizer's vocabulary) are skipped, not kept.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from tui_agent.errors import CorruptModelError, ModelNotFoundError, NotAGGUFError

GGUF_MAGIC = b"GGUF"
_DEFAULT_ALIGNMENT = 32
# Refuse absurd counts early: a corrupt header would otherwise make us read for minutes.
_MAX_COUNT = 1 << 24
_MAX_STRING = 1 << 26

# value type id -> struct format of one scalar
_SCALARS = {
    0: "<B",
    1: "<b",
    2: "<H",
    3: "<h",
    4: "<I",
    5: "<i",
    6: "<f",
    7: "<?",
    10: "<Q",
    11: "<q",
    12: "<d",
}
_STRING, _ARRAY = 8, 9

# ggml tensor type id -> (bytes per block, elements per block), for the size check.
_GGML_BLOCKS = {
    0: (4, 1),
    1: (2, 1),
    2: (18, 32),
    3: (20, 32),
    6: (22, 32),
    7: (24, 32),
    8: (34, 32),
    9: (36, 32),
    10: (84, 256),
    11: (110, 256),
    12: (144, 256),
    13: (176, 256),
    14: (210, 256),
    15: (292, 256),
    16: (66, 256),
    17: (74, 256),
    18: (98, 256),
    19: (50, 256),
    20: (18, 32),
    21: (110, 256),
    22: (82, 256),
    23: (136, 256),
    24: (1, 1),
    25: (2, 1),
    26: (4, 1),
    27: (8, 1),
    28: (8, 1),
    29: (56, 256),
    30: (2, 1),
    34: (54, 256),
    35: (66, 256),
    39: (17, 32),
}


@dataclass
class GGUFInfo:
    """What the header says about a model."""

    path: Path
    version: int
    tensor_count: int
    file_size: int
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def architecture(self) -> str:
        return str(self.metadata.get("general.architecture", "unknown"))

    @property
    def name(self) -> str:
        return str(self.metadata.get("general.name") or self.path.stem)

    @property
    def chat_template(self) -> str | None:
        value = self.metadata.get("tokenizer.chat_template")
        return value if isinstance(value, str) else None

    def arch_int(self, key: str) -> int | None:
        value = self.metadata.get(f"{self.architecture}.{key}")
        return (
            int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
        )


class _Reader:
    def __init__(self, stream: BinaryIO, path: Path, file_size: int) -> None:
        self.stream = stream
        self.path = path
        self.file_size = file_size

    def take(self, n: int) -> bytes:
        data = self.stream.read(n)
        if len(data) != n:
            raise CorruptModelError(
                f"{self.path}: the GGUF file is truncated (header ends at byte {self.stream.tell()}"
                f" of {self.file_size})",
                "the download was probably cut short: delete the file and download it again",
            )
        return data

    def unpack(self, fmt: str) -> Any:
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))[0]

    def count(self, what: str) -> int:
        n = int(self.unpack("<Q"))
        if n > _MAX_COUNT:
            raise CorruptModelError(
                f"{self.path}: the GGUF header is corrupt ({what} = {n})",
                "download the file again or pick another model",
            )
        return n

    def string(self) -> str:
        n = int(self.unpack("<Q"))
        if n > _MAX_STRING:
            raise CorruptModelError(
                f"{self.path}: the GGUF header is corrupt (a string of {n} bytes)",
                "download the file again or pick another model",
            )
        return self.take(n).decode("utf-8", errors="replace")

    def skip_strings(self, n: int) -> None:
        """Step over n strings (a vocabulary: 50k–250k of them) without decoding them: parsing
        each took most of a model's load time."""
        read, seek = self.stream.read, self.stream.seek
        for _ in range(n):
            length = int.from_bytes(read(8), "little")
            if length > _MAX_STRING:
                raise CorruptModelError(
                    f"{self.path}: the GGUF header is corrupt (a string of {length} bytes)",
                    "download the file again or pick another model",
                )
            seek(length, 1)
        if self.stream.tell() > self.file_size:
            self.take(1)  # says where the file ends

    def value(self, vtype: int, keep: bool = True) -> Any:
        if vtype in _SCALARS:
            return self.unpack(_SCALARS[vtype])
        if vtype == _STRING:
            return self.string()
        if vtype == _ARRAY:
            item_type = int(self.unpack("<I"))
            n = self.count("array length")
            if item_type in _SCALARS and not keep:
                self.take(n * struct.calcsize(_SCALARS[item_type]))
                return n
            if item_type == _STRING and not keep:
                self.skip_strings(n)
                return n
            items = [self.value(item_type, keep) for _ in range(n)]
            return items if keep else n
        raise CorruptModelError(
            f"{self.path}: the GGUF header is corrupt (unknown value type {vtype})",
            "download the file again or pick another model",
        )


def read_gguf(path: str | Path, keep_vocabulary: bool = False) -> GGUFInfo:
    """Parse the header, metadata and tensor table; check the file is long enough for its tensors.
    ``keep_vocabulary`` keeps the tokens' texts (to name the special tokens)."""
    path = Path(path)
    if not path.is_file():
        raise ModelNotFoundError(
            f"model file not found: {path}",
            "check the path, or run `llamachat models list` to see the models you have",
        )
    file_size = path.stat().st_size
    with path.open("rb") as stream:
        magic = stream.read(4)
        if magic != GGUF_MAGIC:
            raise NotAGGUFError(
                f"{path}: not a GGUF model file (starts with {magic!r}, expected b'GGUF')",
                "llamachat runs GGUF models; download a .gguf file (e.g. from a -GGUF repo on Hugging Face)",
            )
        reader = _Reader(stream, path, file_size)
        version = int(reader.unpack("<I"))
        if version not in (2, 3):
            raise CorruptModelError(
                f"{path}: unsupported GGUF version {version} (llamachat reads versions 2 and 3)",
                "convert the model again with a current llama.cpp, or download a newer file",
            )
        tensor_count = reader.count("tensor count")
        kv_count = reader.count("metadata count")
        metadata: dict[str, Any] = {}
        for _ in range(kv_count):
            key = reader.string()
            vtype = int(reader.unpack("<I"))
            # Arrays under tokenizer.* hold the vocabulary: count them, don't keep them.
            keep = not key.startswith("tokenizer.ggml.") or (
                keep_vocabulary and key == "tokenizer.ggml.tokens"
            )
            metadata[key] = reader.value(vtype, keep=keep)
        data_end = _tensor_data_end(reader, tensor_count, metadata)
    if data_end > file_size:
        raise CorruptModelError(
            f"{path}: the GGUF file is truncated ({file_size:,} bytes, its tensors need {data_end:,})",
            "the download was probably cut short: delete the file and download it again",
        )
    return GGUFInfo(path, version, tensor_count, file_size, metadata)


def _tensor_data_end(reader: _Reader, tensor_count: int, metadata: dict[str, Any]) -> int:
    """Byte offset where the last tensor's data ends (a lower bound for unknown tensor types)."""
    end_in_data = 0
    for _ in range(tensor_count):
        reader.string()
        n_dims = int(reader.unpack("<I"))
        if n_dims > 8:
            raise CorruptModelError(
                f"{reader.path}: the GGUF header is corrupt (a tensor with {n_dims} dimensions)",
                "download the file again or pick another model",
            )
        elements = 1
        for _ in range(n_dims):
            elements *= int(reader.unpack("<Q"))
        ggml_type = int(reader.unpack("<I"))
        offset = int(reader.unpack("<Q"))
        block = _GGML_BLOCKS.get(ggml_type)
        size = elements * block[0] // block[1] if block else 0
        end_in_data = max(end_in_data, offset + size)
    alignment = int(metadata.get("general.alignment", _DEFAULT_ALIGNMENT)) or _DEFAULT_ALIGNMENT
    position = reader.stream.tell()
    data_start = (position + alignment - 1) // alignment * alignment
    return data_start + end_in_data
