"""llamachat's agent as an MLflow ``ResponsesAgent``: `mlflow models serve`, MLflow's evaluation
and anything else that loads MLflow pyfunc models run it (``pip install 'llamachat[mlflow]'``).

It is the agent `llamachat serve` runs, on the same desk: one resident model that requests queue
for, the same request checks, sessions saved to the history, tool calls that ask answered over
the API. MLflow's request has no ``previous_response_id``: ``custom_inputs`` carries it (or
``session``), and every response's ``custom_outputs`` says both. MLflow's predict is not
asyncio, so the desk runs on an event loop of its own thread.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Generator, Iterator
from typing import Any, TypeVar

from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE, RESOURCE_DOES_NOT_EXIST
from mlflow.pyfunc.model import ResponsesAgent
from mlflow.types.responses import (
    ResponsesAgentRequest,
    ResponsesAgentResponse,
    ResponsesAgentStreamEvent,
)

from tui_agent.serve.desk import Desk, Reply
from tui_agent.serve.requests import BadRequest, TurnRequest, parse_turn_request
from tui_agent.serve.responses import Payload
from tui_agent.session import Session

_T = TypeVar("_T")
# Fields of custom_inputs that continue a session, as the Responses API's own fields do.
_CONTINUATION = ("previous_response_id", "session")


class LlamachatAgent(ResponsesAgent):
    """The configured model and tools (``config``: a config file, else the default one;
    ``model``: as `--model`), or a ``session`` made by the caller."""

    def __init__(
        self,
        config: str | None = None,
        model: str | None = None,
        allow: tuple[str, ...] = (),
        deny: tuple[str, ...] = (),
        save: bool = True,
        session: Session | None = None,
    ) -> None:
        self.config_path, self.model, self.allow, self.deny = config, model, allow, deny
        self.save = save
        self._session = session
        self._desk: DeskThread | None = None
        self._lock = threading.Lock()

    def load_context(self, context: Any) -> None:
        """MLflow loads the model: the agent starts loading its own now, not at the first
        request."""
        self._running()

    # ResponsesAgent's own signatures, which differ from PythonModel's.
    def predict(self, request: ResponsesAgentRequest) -> ResponsesAgentResponse:  # type: ignore[override]
        desk = self._running()
        reply = desk.open(turn_request(request, stream=False))
        for _ in desk.events(reply):
            pass
        response = desk.snapshot(reply)
        return ResponsesAgentResponse(**response, custom_outputs=_continuation(response))

    def predict_stream(  # type: ignore[override]
        self, request: ResponsesAgentRequest
    ) -> Generator[ResponsesAgentStreamEvent, None, None]:
        desk = self._running()
        reply = desk.open(turn_request(request, stream=True))
        for payload in desk.events(reply):
            fields = dict(payload)
            if "response" in payload:
                fields["custom_outputs"] = _continuation(payload["response"])
            yield ResponsesAgentStreamEvent(**fields)

    def close(self) -> None:
        """Stop the model and save what runs (a process that ends does this by itself)."""
        with self._lock:
            if self._desk is not None:
                self._desk.close()
                self._desk = None

    def _running(self) -> DeskThread:
        with self._lock:
            if self._desk is None:
                self._desk = DeskThread(self._session or self._build_session())
            return self._desk

    def _build_session(self) -> Session:
        from tui_agent.commands.history_cmd import open_store
        from tui_agent.commands.serve_cmd import build_session
        from tui_agent.config import load_config

        config = load_config(self.config_path)
        store = open_store(config) if self.save else None
        return build_session(config, self.model, store, list(self.allow), list(self.deny))


def turn_request(request: ResponsesAgentRequest, stream: bool) -> TurnRequest:
    """MLflow's request as the server's, checked the same way (a bad one raises MlflowException
    with the server's message, which `mlflow models serve` answers with a 400)."""
    body = request.model_dump(exclude_none=True, exclude={"custom_inputs", "context"})
    body["stream"] = stream
    for key in _CONTINUATION:
        value = (request.custom_inputs or {}).get(key)
        if value is not None:
            body[key] = value
    try:
        return parse_turn_request(body)
    except BadRequest as exc:
        raise _mlflow_error(exc) from exc


def _continuation(response: dict[str, Any] | None) -> dict[str, Any] | None:
    """What continues this session: send it back as custom_inputs."""
    if not response:
        return None
    return {"previous_response_id": response["id"], "session": response["session"]}


def _mlflow_error(exc: BadRequest) -> MlflowException:
    code = RESOURCE_DOES_NOT_EXIST if exc.status == 404 else INVALID_PARAMETER_VALUE
    param = f"custom_inputs.{exc.param}" if exc.param in _CONTINUATION else exc.param
    where = f" ({param})" if param else ""
    return MlflowException(f"{exc.message}{where}", error_code=code)


class DeskThread:
    """A Desk on an asyncio loop of its own thread, for callers that are not asyncio."""

    def __init__(self, session: Session, approval_timeout: float | None = None) -> None:
        timeout = approval_timeout or session.config.serve.approval_timeout_sec
        self.desk = Desk(session, timeout)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="llamachat-desk", daemon=True
        )
        self._thread.start()
        self._call(self._start())

    async def _start(self) -> None:
        self.desk.start()

    def _call(self, work: Coroutine[Any, Any, _T]) -> _T:
        return asyncio.run_coroutine_threadsafe(work, self._loop).result()

    def open(self, request: TurnRequest) -> Reply:
        async def opened() -> Reply:
            return self.desk.open(request)

        try:
            return self._call(opened())
        except BadRequest as exc:
            raise _mlflow_error(exc) from exc

    def events(self, reply: Reply) -> Iterator[Payload]:
        """The reply's stream events; a caller that stops reading cancels the turn."""
        stream = reply.events()

        async def following() -> Payload | None:
            return await anext(stream)

        try:
            while True:
                try:
                    payload = self._call(following())
                except StopAsyncIteration:
                    return
                if payload is not None:  # None: nothing to say yet
                    yield payload
        finally:
            self._call(stream.aclose())

    def snapshot(self, reply: Reply) -> Payload:
        async def taken() -> Payload:
            return reply.response.snapshot()

        return self._call(taken())

    def close(self) -> None:
        self.desk.close()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
