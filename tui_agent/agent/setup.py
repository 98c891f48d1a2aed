"""Build a worker for a chat: config and model spec in, a started AgentWorker out.

Model resolution (maybe a download) and loading run on the worker thread, so a front end is
usable at once and sees progress as events.
"""

from __future__ import annotations

from tui_agent.agent.backend import LlamaBackend, ModelBackend
from tui_agent.agent.conversation import Conversation
from tui_agent.agent.worker import AgentWorker, BackendFactory, Recorder
from tui_agent.config import Config
from tui_agent.engine.resident import get_resident_model
from tui_agent.events import EventSink
from tui_agent.models.sources import resolve_spec
from tui_agent.tools.base import ToolExecutor


def llama_backend_loader(config: Config, model_spec: str | None) -> BackendFactory:
    """A backend factory for AgentWorker: resolves, checks and loads the model when called."""

    def load(sink: EventSink) -> ModelBackend:
        _, path = resolve_spec(model_spec or config.model.source or None, sink)
        model = get_resident_model(path, config.model, sink)
        return LlamaBackend(model, tool_format=config.model.tool_format)

    return load


def start_worker(
    config: Config,
    model_spec: str | None,
    tools: ToolExecutor | None = None,
    system_prompt: str | None = None,
    sink: EventSink | None = None,
    ask_user: bool = True,
    recorder: Recorder | None = None,
    conversation: Conversation | None = None,
) -> AgentWorker:
    """A started worker; ``conversation`` continues a session (e.g. one loaded from history)."""
    worker = AgentWorker(
        llama_backend_loader(config, model_spec),
        tools,
        config.agent,
        system_prompt,
        sink,
        ask_user,
        recorder,
    )
    if conversation is not None:
        worker.conversation = conversation
    return worker.start()
