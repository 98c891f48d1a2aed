"""`mlflow models serve` runs llamachat's agent (the README's MLflow example, word for word) on
the real demo model: a saved MLflow model, MLflow's own scoring server, /invocations."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx2 as httpx
import pytest

from tests.conftest import free_port
from tui_agent.store.sessions import SessionStore

pytestmark = pytest.mark.model

README = Path(__file__).parents[2] / "README.md"


def readme_block(after: str, language: str) -> str:
    """The first ```language block after the line that starts with ``after``."""
    text = README.read_text(encoding="utf-8")
    start = text.index(f"```{language}\n", text.index(after)) + len(language) + 4
    return text[start : text.index("```", start)]


def test_mlflow_models_serve_runs_the_agent(tmp_path: Path, isolated_dirs: Path) -> None:
    (tmp_path / "agent.py").write_text(readme_block("To serve the agent with MLflow", "python"))
    bin_dir = str(Path(sys.executable).parent)
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",  # MLflow starts `uvicorn`
        "MLFLOW_TRACKING_URI": (tmp_path / "mlruns").as_uri(),
    }
    commands = readme_block("To serve the agent with MLflow", "sh")
    save, serve, *asking = [line for line in commands.splitlines() if line.strip()]
    saved = subprocess.run(
        save, shell=True, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert saved.returncode == 0, saved.stderr
    port = free_port()
    server = subprocess.Popen(
        serve.replace("5000", str(port)),
        shell=True,
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # MLflow's command starts uvicorn: stop them together
    )
    url = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(timeout=120) as client:
            deadline = time.monotonic() + 120
            while True:
                assert server.poll() is None, server.stderr.read() if server.stderr else ""
                assert time.monotonic() < deadline, "mlflow models serve did not start"
                try:
                    if client.get(f"{url}/ping").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.5)
            curl = subprocess.run(
                ["bash", "-euo", "pipefail", "-c", "\n".join(asking).replace("5000", str(port))],
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert curl.returncode == 0, curl.stderr
            assert json.loads(curl.stdout)["output"][-1]["type"] == "message"
            body = {"input": [{"role": "user", "content": "Say hello."}], "max_output_tokens": 24}
            first = client.post(f"{url}/invocations", json=body)
            assert first.status_code == 200, first.text
            reply = first.json()
            assert reply["status"] in ("completed", "incomplete")
            assert reply["output"][-1]["type"] == "message"
            session = reply["custom_outputs"]["session"]
            again = client.post(
                f"{url}/invocations",
                json={**body, "custom_inputs": reply["custom_outputs"]},
            )
            assert again.status_code == 200, again.text
            assert again.json()["custom_outputs"]["session"] == session
            bad = client.post(f"{url}/invocations", json={**body, "temperature": 9})
            assert bad.status_code == 400 and bad.json()["error_code"] == "INVALID_PARAMETER_VALUE"
            assert "temperature" in bad.json()["message"]
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(30)
    db = isolated_dirs / "data" / "llamachat" / "history.db"
    store = SessionStore(db)
    try:
        roles = [m.role for m in store.load_conversation(session).messages]
    finally:
        store.close()
    assert roles == ["user", "assistant", "user", "assistant"]
