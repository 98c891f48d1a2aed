"""The one resident model of the process.

Loading a GGUF is the slowest thing llamachat does, and the KV cache it holds is what makes
follow-up turns fast, so the model is loaded once and every session and prompt reuses it. Only the
agent worker thread may call into the ``Llama`` object: it is not thread-safe.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tui_agent.config import ModelConfig
from tui_agent.engine.fallback_templates import FallbackTemplate, fallback_template
from tui_agent.engine.llama_log import install_log_router, log_mark, recent_log
from tui_agent.engine.state_cache import StateCache, recurrent
from tui_agent.engine.state_files import StateShelf
from tui_agent.engine.template_source import template_from_config
from tui_agent.engine.threads import ThreadGovernor
from tui_agent.errors import CorruptModelError, LoadCancelled, ModelError, UnsupportedModelError
from tui_agent.events import EventSink, ModelLoaded, ModelLoadProgress, Notice, ignore_event
from tui_agent.models.gguf import GGUFInfo, read_gguf
from tui_agent.models.memory import check_fits


@dataclass(frozen=True)
class LoadSettings:
    """Everything that decides whether a loaded model can be reused as is."""

    path: Path
    n_ctx: int
    n_threads: int
    n_batch: int
    flash_attn: bool
    n_gpu_layers: int
    state_cache_mb: int = 0
    state_disk_mb: int = 0
    adaptive_threads: bool = False
    draft: str = "off"

    @classmethod
    def from_config(cls, path: Path, config: ModelConfig) -> LoadSettings:
        # Pass the thread count explicitly: llama.cpp's default is half the cores.
        threads = config.n_threads or os.cpu_count() or 1
        return cls(
            path,
            config.n_ctx,
            threads,
            config.n_batch,
            config.flash_attn,
            config.n_gpu_layers,
            config.state_cache_mb,
            config.state_disk_mb,
            config.adaptive_threads,
            config.draft,
        )


@dataclass(frozen=True)
class ResourceStats:
    rss_bytes: int
    model_file_bytes: int
    n_ctx: int
    tokens_processed: int
    tokens_generated: int
    avg_generation_tok_s: float
    active_sessions: int
    load_seconds: float


class ResidentModel:
    """A loaded model plus the numbers a status bar or `models check` shows."""

    def __init__(
        self,
        settings: LoadSettings,
        info: GGUFInfo,
        llama: Any,
        load_seconds: float,
        chat_template: str,
        template_source: str,
        turn_end: FallbackTemplate | None = None,
    ) -> None:
        self.settings = settings
        self.info = info
        self._llama: Any = llama
        self.load_seconds = load_seconds
        self.chat_template = chat_template
        self.template_source = template_source
        # How a turn ends when the template is one of ours (the GGUF had none): the ids of the
        # tokens that close it, or the text that starts the next turn.
        self.end_token_ids = frozenset(
            token
            for text in (turn_end.end_tokens if turn_end else ())
            if (token := single_token(llama, text)) is not None
        )
        self.stop_strings = turn_end.stop_strings if turn_end else ()
        self.tokens_processed = 0
        self.tokens_generated = 0
        self.generation_seconds = 0.0
        self.active_sessions: set[str] = set()
        # Threads inside llama.cpp right now: the model is freed only when none is.
        self._users = 0
        self._in_use = threading.Condition()
        self._abort = AbortFlag(llama)
        governor = ThreadGovernor(llama, settings.n_threads)
        self.threads = governor if settings.adaptive_threads and governor.works else None
        # A recurrent model's state cannot be cut back to drop the guesses it did not take.
        self.drafting = settings.draft == "prompt-lookup" and not recurrent(llama)
        self.state_cache: StateCache | None = None
        if settings.state_cache_mb or settings.state_disk_mb:
            shelf = None
            if settings.state_disk_mb:
                shelf = StateShelf(state_identity(settings, llama), settings.state_disk_mb * 2**20)
            self.state_cache = StateCache(settings.state_cache_mb * 2**20, shelf)

    @contextlib.contextmanager
    def in_use(self) -> Iterator[Any]:
        """The llama.cpp model, held so that close() waits until this block is done with it."""
        with self._in_use:
            llama = self.llama  # raises when it was unloaded
            self._users += 1
        try:
            yield llama
        finally:
            with self._in_use:
                self._users -= 1
                if not self._users:  # an interrupt is for what ran, never for what comes next
                    self._abort.clear()
                self._in_use.notify_all()

    def interrupt(self) -> None:
        """Stop the evaluation running now (a long prompt is read in batches that take seconds
        each): llama.cpp checks the flag between the steps of its compute graph."""
        with self._in_use:
            if self._users:
                self._abort.set()

    @property
    def interrupted(self) -> bool:
        return self._abort.is_set()

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def llama(self) -> Any:
        # A freed llama.cpp model crashes the process when touched: fail with a message instead.
        if self._llama is None:
            raise ModelError(
                f"{self.name} was unloaded (another model replaced it)",
                "start a new session so it uses the model that is loaded now",
            )
        return self._llama

    def record_turn(self, prompt_tokens: int, generated: int, generation_seconds: float) -> None:
        self.tokens_processed += prompt_tokens
        self.tokens_generated += generated
        self.generation_seconds += generation_seconds

    def stats(self) -> ResourceStats:
        rate = self.tokens_generated / self.generation_seconds if self.generation_seconds else 0.0
        return ResourceStats(
            rss_bytes=current_rss(),
            model_file_bytes=self.info.file_size,
            n_ctx=self.settings.n_ctx,
            tokens_processed=self.tokens_processed,
            tokens_generated=self.tokens_generated,
            avg_generation_tok_s=rate,
            active_sessions=len(self.active_sessions),
            load_seconds=self.load_seconds,
        )

    def close(self, timeout: float = 30.0) -> bool:
        """Free the model once no thread is inside it, interrupting what runs; False (and the
        model kept, which is safe) when a thread is still inside after ``timeout``."""
        with self._in_use:
            self._abort.set()
            if not self._in_use.wait_for(lambda: self._users == 0, timeout):
                return False
            llama, self._llama = self._llama, None
        close = getattr(llama, "close", None)
        if close is not None:
            close()
        return True


_lock = threading.Lock()
_resident: dict[str, Any] = {"model": None, "loads": 0}


def load_count() -> int:
    """How many times this process has loaded a model (tests assert it stays at one)."""
    return int(_resident["loads"])


def get_resident_model(
    path: Path, config: ModelConfig, on_event: EventSink = ignore_event
) -> ResidentModel:
    """The resident model for these settings: the loaded one when they match, else a fresh load.

    Loading another model frees the previous one first, so two never sit in memory together.
    """
    settings = LoadSettings.from_config(path, config)
    model = _resident_for(settings, config, on_event)
    # Also when the model was already loaded: a new front end learns it is ready from this event.
    on_event(
        ModelLoaded(
            model.name, str(path), model.load_seconds, settings.n_ctx, model.template_source
        )
    )
    return model


def _resident_for(
    settings: LoadSettings, config: ModelConfig, on_event: EventSink
) -> ResidentModel:
    with _lock:
        current: ResidentModel | None = _resident["model"]
        if current is not None and current.settings == settings:
            return current
        if current is not None:
            current.close()
            _resident["model"] = None
        model = _load(settings, config.chat_template, on_event)
        if _resident["loads"] == 0:
            # Free llama.cpp before interpreter teardown; Llama.__del__ fails noisily after it.
            atexit.register(unload_resident_model)
        _resident["model"] = model
        _resident["loads"] += 1
        return model


def unload_resident_model() -> None:
    with _lock:
        current: ResidentModel | None = _resident["model"]
        _resident["model"] = None
    if current is not None:
        current.close()


def _load(settings: LoadSettings, template_override: str, on_event: EventSink) -> ResidentModel:
    info = read_gguf(settings.path)
    check_fits(info, settings.n_ctx, settings.n_batch)
    configured = template_from_config(template_override)  # a bad file: said before the load
    install_log_router()
    import llama_cpp

    on_event(ModelLoadProgress(info.name, 0.0))
    mark = log_mark()
    started = time.perf_counter()
    stopped: list[LoadCancelled] = []
    try:
        with _load_progress(
            lambda fraction: on_event(ModelLoadProgress(info.name, fraction)), stopped
        ):
            llama = llama_cpp.Llama(
                model_path=str(settings.path),
                n_ctx=settings.n_ctx,
                n_batch=settings.n_batch,
                n_threads=settings.n_threads,
                n_threads_batch=settings.n_threads,
                flash_attn=settings.flash_attn,
                n_gpu_layers=settings.n_gpu_layers,
                verbose=False,
            )
    except (ValueError, RuntimeError, OSError) as exc:
        if stopped:
            raise stopped[0] from None
        raise _load_error(info, recent_log(mark)) from exc
    seconds = time.perf_counter() - started
    fallback = None
    if configured:
        template, source = configured.template, configured.origin
    elif info.chat_template:
        template, source = info.chat_template, "GGUF (tokenizer.chat_template)"
    else:
        fallback = fallback_template(
            info.architecture, lambda text: single_token(llama, text) is not None
        )
        template = fallback.template
        source = f"built-in {fallback.name} (the GGUF has none)"
    on_event(ModelLoadProgress(info.name, 1.0))
    trained = info.arch_int("context_length")
    if trained and settings.n_ctx > trained:
        # llama.cpp only writes this to its log; replies past the trained length degrade.
        on_event(
            Notice(
                f"n_ctx {settings.n_ctx:,} is more than the {trained:,} tokens {info.name} was"
                f" trained on: a conversation longer than that may get garbled replies"
                f" (set [model] n_ctx to {trained:,} or less)"
            )
        )
    return ResidentModel(settings, info, llama, seconds, template, source, fallback)


def state_identity(settings: LoadSettings, llama: Any) -> dict[str, Any]:
    """What a saved state must have been saved with to be put back into this model."""
    import llama_cpp

    stat = settings.path.stat()
    return {
        "model": str(settings.path.resolve()),
        "model_bytes": stat.st_size,
        "model_mtime_ns": stat.st_mtime_ns,
        "n_ctx": int(llama.n_ctx()),
        "flash_attn": settings.flash_attn,
        "llama_cpp_python": llama_cpp.__version__,
    }


class AbortFlag:
    """llama.cpp's abort callback, answered without Python.

    The callback is asked at every step of the compute graph, from llama.cpp's own threads; a
    Python callback would take the GIL there thousands of times a second and wait for whatever
    thread holds it (the UI). The C library's ``strlen`` is the callback instead, on a two-byte
    buffer: it returns 0 (go on) while the first byte is 0 and 1 (abort) once it is set.
    ``bool f(void *)`` and ``size_t strlen(const char *)`` pass and return the same registers.
    """

    def __init__(self, llama: Any) -> None:
        import ctypes
        import ctypes.util

        import llama_cpp

        self._buffer = ctypes.create_string_buffer(2)
        libc = ctypes.CDLL(ctypes.util.find_library("c"))
        address = ctypes.cast(libc.strlen, ctypes.c_void_p).value
        context = getattr(getattr(llama, "_ctx", None), "ctx", None)
        if address and context is not None:
            # Kept on self: llama.cpp holds the pointers, Python must not collect them.
            self._callback = llama_cpp.ggml_abort_callback(address)
            llama_cpp.llama_set_abort_callback(
                context, self._callback, ctypes.cast(self._buffer, ctypes.c_void_p)
            )

    def set(self) -> None:
        self._buffer[0] = b"\x01"

    def clear(self) -> None:
        self._buffer[0] = b"\x00"

    def is_set(self) -> bool:
        return self._buffer[0] != b"\x00"


def single_token(llama: Any, text: str) -> int | None:
    """The id of the one token the vocabulary writes ``text`` as, if it has one."""
    ids = llama.tokenize(text.encode("utf-8"), add_bos=False, special=True)
    return int(ids[0]) if len(ids) == 1 else None


@contextlib.contextmanager
def _load_progress(report: Any, stopped: list[LoadCancelled]) -> Iterator[None]:
    """Report llama.cpp's load progress (0..1) while a Llama is constructed.

    llama-cpp-python builds the model params inside ``Llama.__init__`` and offers no progress
    hook, so the params factory it calls is wrapped for the duration of the load to set
    llama.cpp's own ``progress_callback``. Only the loading thread is inside this block.
    When ``report`` raises LoadCancelled, it goes into ``stopped`` and llama.cpp is told to
    abort the load: an exception raised inside a C callback would be printed and lost.
    """
    import importlib

    # The module llama_cpp.llama calls the factory through, looked up at call time.
    cpp: Any = importlib.import_module("llama_cpp.llama_cpp")
    original = cpp.llama_model_default_params
    last = [-1.0]

    @cpp.llama_progress_callback  # type: ignore[untyped-decorator]
    def _progress(fraction: float, user_data: Any) -> bool:
        if fraction - last[0] >= 0.05 and fraction < 1.0:
            last[0] = fraction
            try:
                report(float(fraction))
            except LoadCancelled as exc:
                stopped.append(exc)
                return False
        return True

    def _params_with_progress() -> Any:
        params = original()
        params.progress_callback = _progress
        return params

    cpp.llama_model_default_params = _params_with_progress
    try:
        yield
    finally:
        cpp.llama_model_default_params = original


def _load_error(info: GGUFInfo, log_lines: list[str]) -> ModelError:
    text = "".join(log_lines)
    if "unknown model architecture" in text:
        return UnsupportedModelError(
            f"{info.path}: llama.cpp does not support the model architecture {info.architecture!r}",
            "pick a model with a supported architecture (llama, qwen2, phi3, gemma, mistral, …)"
            " or upgrade llama-cpp-python",
        )
    detail = next(
        (line.strip() for line in reversed(log_lines) if "error" in line.lower()), "no detail"
    )
    return CorruptModelError(
        f"{info.path}: llama.cpp could not load the model ({detail})",
        "download the file again, or check it with `llamachat models check PATH`",
    )


def current_rss() -> int:
    """Resident set size of this process in bytes."""
    try:
        with open("/proc/self/statm", encoding="ascii") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
