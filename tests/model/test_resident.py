"""The resident model on the real demo GGUF (SmolLM2-135M-Instruct)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.gguf_writer import llama_like_metadata, write_gguf
from tui_agent.agent.worker import AgentWorker
from tui_agent.config import AgentConfig, Config, ModelConfig
from tui_agent.engine import resident
from tui_agent.engine.chat_template import renderer_for
from tui_agent.engine.generation import GREEDY, collect, stream_completion
from tui_agent.errors import LoadCancelled, UnsupportedModelError
from tui_agent.events import Error, Event, ModelLoaded, ModelLoadProgress
from tui_agent.models.gguf import read_gguf
from tui_agent.session import llama_backend_loader
from tui_agent.tools.base import NoTools

pytestmark = pytest.mark.model
CONFIG = ModelConfig(n_ctx=2048, n_threads=2)


def generate(model: resident.ResidentModel, prompt: str, max_tokens: int = 8) -> tuple[str, object]:
    sampling = GREEDY.__class__(**{**GREEDY.__dict__, "max_tokens": max_tokens})
    return collect(stream_completion(model, prompt, sampling))


def test_loads_once_and_is_reused_across_prompts(demo_gguf: Path) -> None:
    events: list[Event] = []
    model = resident.get_resident_model(demo_gguf, CONFIG, events.append)
    loads = resident.load_count()
    loaded = [e for e in events if isinstance(e, ModelLoaded)]
    assert len(loaded) == 1 and loaded[0].path == str(demo_gguf), (
        "loaded or reused, it says so once"
    )
    renderer = renderer_for(model)
    rss = []
    for i in range(12):
        again = resident.get_resident_model(demo_gguf, CONFIG)
        assert again is model
        text, stats = generate(
            again, renderer.render([{"role": "user", "content": f"Count to {i}."}])
        )
        assert text
        rss.append(again.stats().rss_bytes)
    assert resident.load_count() == loads, "the model must never be reloaded for a new prompt"
    assert max(rss) < rss[0] * 1.05, f"RSS grew across prompts: {rss}"
    stats = model.stats()
    assert stats.tokens_generated >= 12 and stats.avg_generation_tok_s > 0
    assert stats.model_file_bytes == demo_gguf.stat().st_size


def test_load_reports_progress(demo_gguf: Path) -> None:
    events: list[Event] = []
    other = ModelConfig(n_ctx=1024, n_threads=2)  # different settings force a fresh load
    model = resident.get_resident_model(demo_gguf, other, events.append)
    fractions = [e.fraction for e in events if isinstance(e, ModelLoadProgress)]
    assert fractions[0] == 0.0 and fractions[-1] == 1.0 and len(fractions) >= 3
    assert any(isinstance(e, ModelLoaded) for e in events)
    assert model.template_source.startswith("GGUF")
    # Put the common settings back so later tests reuse one model.
    resident.get_resident_model(demo_gguf, CONFIG)


def test_unsupported_architecture_is_named(tmp_path: Path) -> None:
    path = write_gguf(tmp_path / "odd.gguf", llama_like_metadata("notarealarch"), [("w", [64])])
    with pytest.raises(UnsupportedModelError) as info:
        resident.get_resident_model(path, CONFIG)
    assert "'notarealarch'" in str(info.value)


def test_cli_models_check_on_demo(demo_gguf: Path) -> None:
    result = run_cli("models", "check", "--tokens", "8")
    assert result.returncode == 0, result.stderr
    for field in ("load time:", "tok/s", "rss:", "chat template:", "<|im_start|>"):
        assert field in result.stdout
    assert result.stderr == "", "llama.cpp must not write to the terminal"


@pytest.mark.parametrize(
    ("make", "exit_code", "expected"),
    [
        (lambda d: d / "missing.gguf", 3, "model file not found"),
        (
            lambda d: (d / "x.gguf", (d / "x.gguf").write_bytes(b"<html>"))[0],
            3,
            "not a GGUF model file",
        ),
        (
            lambda d: write_gguf(
                d / "t.gguf", llama_like_metadata(), [("w", [4096, 64])], truncate_to=5000
            ),
            3,
            "truncated",
        ),
        (
            lambda d: write_gguf(d / "a.gguf", llama_like_metadata("notarealarch"), [("w", [64])]),
            3,
            "does not support the model architecture",
        ),
    ],
)
def test_cli_bad_models_exit_nonzero_with_one_clear_line(
    tmp_path: Path, make, exit_code: int, expected: str
) -> None:  # type: ignore[no-untyped-def]
    path = make(tmp_path)
    result = run_cli("models", "check", str(path))
    assert result.returncode == exit_code
    assert expected in result.stderr and "Traceback" not in result.stderr
    assert result.stderr.startswith("llamachat: error:")


def test_cli_unknown_preset_and_offline_hub() -> None:
    unknown = run_cli("models", "check", "huge")
    assert unknown.returncode == 3 and "unknown model preset 'huge'" in unknown.stderr
    offline = run_cli("models", "check", "small")
    assert offline.returncode == 3 and "HF_HUB_OFFLINE" in offline.stderr


def test_cli_not_enough_memory(tmp_path: Path) -> None:
    meta = llama_like_metadata(
        **{
            "llama.block_count": 200,
            "llama.embedding_length": 16384,
            "llama.attention.head_count": 128,
        }
    )
    path = write_gguf(tmp_path / "big.gguf", meta, [("w", [64])])
    config = tmp_path / "c.toml"
    config.write_text("[model]\nn_ctx = 1048576\n")
    result = run_cli("--config", str(config), "models", "check", str(path))
    assert (
        result.returncode == 3
        and "not enough memory" in result.stderr
        and "available" in result.stderr
    )


def test_a_replaced_model_fails_cleanly_instead_of_crashing(demo_gguf: Path) -> None:
    from tui_agent.errors import ModelError

    old = resident.get_resident_model(demo_gguf, CONFIG)
    resident.get_resident_model(demo_gguf, ModelConfig(n_ctx=768, n_threads=2))
    with pytest.raises(ModelError, match="was unloaded"):
        generate(old, "hello")
    resident.get_resident_model(demo_gguf, CONFIG)


def test_agent_n_batch_sets_the_prompt_batch(demo_gguf: Path) -> None:
    """[agent] n_batch decides how many prompt tokens are evaluated at once (capped by the context's)."""
    model = resident.get_resident_model(demo_gguf, CONFIG)
    prompt = renderer_for(model).render([{"role": "user", "content": "Name a colour. " * 20}])
    for wanted, applied in ((16, 16), (100_000, CONFIG.n_batch)):
        sampling = GREEDY.__class__(**{**GREEDY.__dict__, "max_tokens": 4, "n_batch": wanted})
        pieces = stream_completion(model, prompt, sampling)
        text = "".join(pieces)
        assert model.llama.n_batch == applied and text


def test_a_cancel_stops_a_load_through_llama_cpp(demo_gguf: Path) -> None:
    """cancel() during a load (Esc, a model switch, quitting) makes llama.cpp's progress
    callback abort the load; the process can load a model again afterwards."""
    config = Config()
    config.model = ModelConfig(n_ctx=1024, n_threads=2)  # other settings: a real load
    events: list[Event] = []

    def sink(event: Event) -> None:
        events.append(event)
        if isinstance(event, ModelLoadProgress):
            worker.cancel()  # the next report comes from llama.cpp's C callback

    worker = AgentWorker(
        llama_backend_loader(config, str(demo_gguf)), NoTools(), AgentConfig(), sink=sink
    )
    worker.start()
    assert worker.ready.wait(60)
    worker.stop()
    [error] = [e for e in events if isinstance(e, Error)]
    assert error.message == f"loading {read_gguf(demo_gguf).name} stopped", error
    assert error.kind == "model_load"
    assert [e.fraction for e in events if isinstance(e, ModelLoadProgress)] == [0.0]
    assert not [e for e in events if isinstance(e, ModelLoaded)]
    assert resident.get_resident_model(demo_gguf, CONFIG).llama is not None


def test_a_load_stopped_in_llama_cpps_callback_goes_no_further(demo_gguf: Path) -> None:
    fractions: list[float] = []

    def sink(event: Event) -> None:
        if isinstance(event, ModelLoadProgress):
            fractions.append(event.fraction)
            if 0 < event.fraction < 1:
                raise LoadCancelled("stop", "")

    with pytest.raises(LoadCancelled):
        resident.get_resident_model(demo_gguf, ModelConfig(n_ctx=768, n_threads=2), sink)
    stopped_at = [f for f in fractions if 0 < f < 1]
    assert stopped_at == fractions[-1:] and 1.0 not in fractions, (
        f"llama.cpp must stop at the report that raised: {fractions}"
    )
    assert resident.get_resident_model(demo_gguf, CONFIG).llama is not None


def test_a_context_beyond_the_trained_length_is_warned_about(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text("[model]\nn_ctx = 16384\n[agent]\nmax_tokens_per_completion = 4\n")
    result = run_cli("--config", str(config), "-p", "hi", "--no-save")
    assert result.returncode == 0, result.stderr
    assert "n_ctx 16,384 is more than the 8,192 tokens" in result.stderr
    assert result.stderr.count("trained on") == 1


def test_what_other_threads_print_while_a_model_loads_is_kept(demo_gguf: Path) -> None:
    """llama-cpp-python points fds 1 and 2 at /dev/null while it loads: another thread's output
    (a headless stream-json line, a frame of the chat) was lost meanwhile."""
    script = f"""
import sys, threading
from pathlib import Path
from tui_agent.config import ModelConfig
from tui_agent.engine import resident
done = threading.Event()
def tick():
    n = 0
    while not done.is_set() or n < 200:
        print(f"tick {{n}}", flush=True)
        n += 1
threading.Thread(target=tick).start()
resident.get_resident_model(Path({str(demo_gguf)!r}), ModelConfig(n_ctx=512, n_threads=2))
done.set()
"""
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    ticks = result.stdout.splitlines()
    assert ticks == [f"tick {n}" for n in range(len(ticks))], "no line lost or run together"
    assert result.stderr == "", "llama.cpp's own output still goes to its log, not the terminal"
