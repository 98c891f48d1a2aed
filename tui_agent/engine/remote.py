"""A model served by another engine over an OpenAI-compatible HTTP API: llama-server, vLLM,
Ollama, llama-cpp-python's server.

Standard library HTTP only: one connection per request, the socket's timeout set apart for
connecting and for reading, and a response another thread can close to stop a stream at once.
Every failure is a RemoteError that says what went wrong and what to do.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from tui_agent.config import ModelConfig
from tui_agent.engine.template_source import TemplateSource
from tui_agent.errors import ErrorKind, ModelError
from tui_agent.events import EventSink, ModelLoadProgress

# How often a server that is still loading its model (503 from /health) is asked again.
_HEALTH_POLL_SECONDS = 0.5
# Waits before asking again when a request fails before any reply came (a server restarting,
# a busy proxy); nothing is retried once a reply has begun, so nothing is said twice.
_RETRY_DELAYS = (0.5, 1.5)
_RETRY_STATUSES = frozenset({502, 503, 504})


class RemoteError(ModelError):
    """The server cannot be reached, refused us, or is not an OpenAI-compatible engine."""

    kind: ErrorKind = "remote"

    def __init__(self, message: str, hint: str = "", retryable: bool = False) -> None:
        super().__init__(message, hint)
        self.retryable = retryable  # the request never reached a server that answered


def is_remote(spec: str | None) -> bool:
    return bool(spec) and str(spec).startswith(("http://", "https://"))


@dataclass(frozen=True)
class RemoteSettings:
    url: str  # the API base, e.g. http://gpu-box:8080/v1
    api_key_env: str = ""
    model: str = ""  # which of the served models; empty: the only one
    headers: dict[str, str] = field(default_factory=dict)
    connect_timeout: float = 5.0
    read_timeout: float = 120.0


@dataclass(frozen=True)
class RemoteInfo:
    model: str
    n_ctx: int  # 0 when the server does not say
    kind: str  # what answered: llama-server, vllm, ollama, openai-compatible
    template: TemplateSource | None = None  # the chat template the server says it uses
    # The path that tokenizes (llama-server's /tokenize, llama-cpp-python's /extras/tokenize),
    # empty when there is none; and whether it puts a BOS token in front of a prompt.
    tokenizer: str = ""
    adds_bos: bool = False
    slots: int = 0  # llama-server's slot count (its /props); 0 when unknown


class RemoteServer:
    @classmethod
    def from_config(cls, url: str, model: ModelConfig) -> RemoteServer:
        """The server at ``url`` as the ``[model]`` section reaches it."""
        return cls(
            RemoteSettings(
                url,
                model.api_key_env,
                model.remote_model,
                dict(model.headers),
                model.connect_timeout_sec,
                model.read_timeout_sec,
            )
        )

    def __init__(self, settings: RemoteSettings) -> None:
        self.settings = settings
        parts = urlsplit(settings.url.rstrip("/"))
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise RemoteError(
                f"not an http(s) URL: {settings.url}", "e.g. --model http://127.0.0.1:8080/v1"
            )
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port or (443 if self._https else 80)
        self._base = parts.path if parts.path.endswith("/v1") else parts.path + "/v1"
        self._root = self._base.removesuffix("/v1")
        # The socket of the stream being read, for interrupt() to shut from another thread.
        self._streaming: socket.socket | None = None
        self._lock = threading.Lock()

    @property
    def where(self) -> str:
        return f"{self._host}:{self._port}"

    # --- requests -------------------------------------------------------------------------

    def headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json", **self.settings.headers}
        if self.settings.api_key_env:
            key = os.environ.get(self.settings.api_key_env, "")
            if key:
                headers["Authorization"] = f"Bearer {key}"
        return headers

    def _request(
        self, method: str, path: str, body: dict[str, Any] | None = None, streaming: bool = False
    ) -> http.client.HTTPResponse:
        """The response to a request (any status); connection failures are RemoteErrors."""
        connection: http.client.HTTPConnection
        if self._https:
            connection = http.client.HTTPSConnection(
                self._host,
                self._port,
                timeout=self.settings.connect_timeout,
                context=ssl.create_default_context(),
            )
        else:
            connection = http.client.HTTPConnection(
                self._host, self._port, timeout=self.settings.connect_timeout
            )
        payload = json.dumps(body).encode("utf-8") if body is not None else None
        headers = self.headers()
        if payload is not None:
            headers["Content-Type"] = "application/json"
        try:
            connection.connect()
            assert connection.sock is not None
            connection.sock.settimeout(self.settings.read_timeout)
            if streaming:
                with self._lock:
                    self._streaming = connection.sock
            connection.request(method, path, payload, headers)
            try:
                return connection.getresponse()
            except TimeoutError as exc:
                raise RemoteError(
                    f"{self.where} took the request but sent nothing for"
                    f" {self.settings.read_timeout:g} s",
                    "check the server's log; raise [model] read_timeout_sec if it is just slow",
                ) from exc
        except ssl.SSLError as exc:
            raise RemoteError(
                f"TLS with {self.where} failed: {exc.reason or exc}",
                "check the certificate, or use the server's http:// address through an SSH tunnel",
            ) from exc
        except socket.gaierror as exc:
            raise RemoteError(
                f"cannot find the host {self._host}: {exc.strerror}", "check the URL's host name"
            ) from exc
        except ConnectionRefusedError as exc:
            raise RemoteError(
                f"nothing answers at {self.where} (connection refused)",
                "start the server there, or check the URL's host and port",
                retryable=True,
            ) from exc
        except TimeoutError as exc:
            raise RemoteError(
                f"{self.where} did not answer within {self.settings.connect_timeout:g} s",
                "check that the server runs and the network reaches it"
                " ([model] connect_timeout_sec, read_timeout_sec)",
            ) from exc
        except OSError as exc:
            raise RemoteError(
                f"cannot talk to {self.where}: {exc.strerror or exc}",
                "check the URL and network",
                retryable=True,
            ) from exc

    def _json(self, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
        response = self._request("GET" if body is None else "POST", path, body)
        with response:
            raw = response.read()
        try:
            return response.status, json.loads(raw) if raw else None
        except ValueError:
            return response.status, None

    def _refused(self, status: int) -> RemoteError:
        if status in (401, 403):
            env = self.settings.api_key_env
            return RemoteError(
                f"{self.where} refused the request ({status}: not authorized)",
                f"set the API key in ${env}"
                if env
                else "set [model] api_key_env to the name of"
                " an environment variable holding the API key",
            )
        return RemoteError(f"{self.where} answered {status}", "check the URL: it should end in /v1")

    # --- the health check -------------------------------------------------------------------

    def check(self, on_event: EventSink, name: str) -> RemoteInfo:
        """Wait while the server loads its model (llama-server's /health says 503), then find
        the model it serves and its context length."""
        while True:
            status, _ = self._json(f"{self._root}/health")
            if status != 503:
                break
            # A progress event: the front end shows it, and a cancel stops the wait here.
            on_event(ModelLoadProgress(f"{name} (server loading model…)", 0.0))
            time.sleep(_HEALTH_POLL_SECONDS)
        status, listing = self._json(f"{self._base}/models")
        if status != 200:
            raise self._refused(status)
        served = _served_models(listing)
        if served is None:
            raise RemoteError(
                f"{self.settings.url} is not an OpenAI-compatible server (no model list at"
                f" {self._base}/models)",
                "give the API's base URL, e.g. http://host:8080/v1",
            )
        model = self._pick(served)
        status, props = self._json(f"{self._root}/props")
        props = props if status == 200 and isinstance(props, dict) else None
        kind, n_ctx = _describe(listing, model, props)
        tokenizer, adds_bos = self._find_tokenizer(model)
        slots = int(props.get("total_slots") or 0) if props else 0
        return RemoteInfo(model, n_ctx, kind, _served_template(props), tokenizer, adds_bos, slots)

    def slot_action(self, slot: int, action: str, filename: str) -> tuple[int, Any]:
        """llama-server's ``/slots/ID?action=save|restore``: (status, answer)."""
        return self._json(f"{self._root}/slots/{slot}?action={action}", {"filename": filename})

    def _find_tokenizer(self, model: str) -> tuple[str, bool]:
        """The server's tokenize endpoint, found by tokenizing nothing: what comes back is the
        BOS token, if the server adds one."""
        for path, body in (
            (f"{self._root}/tokenize", {"content": "", "add_special": True}),
            (f"{self._root}/extras/tokenize", {"input": "", "model": model}),
        ):
            tokens = _tokens(*self._json(path, body))
            if tokens is not None:
                return path, bool(tokens)
        return "", False

    def count_tokens(self, info: RemoteInfo, text: str) -> int | None:
        """The text's length in the server's own tokens (None: the server did not say)."""
        if info.tokenizer.endswith("/extras/tokenize"):
            body: dict[str, Any] = {"input": text, "model": info.model}
        else:
            body = {"content": text, "add_special": True}
        try:
            tokens = _tokens(*self._json(info.tokenizer, body))
        except RemoteError:
            return None
        return len(tokens) if tokens is not None else None

    def _pick(self, served: list[str]) -> str:
        wanted = self.settings.model
        if wanted:
            if wanted not in served:
                raise RemoteError(
                    f"{self.where} does not serve {wanted!r}", f"it serves: {', '.join(served)}"
                )
            return wanted
        if len(served) != 1:
            raise RemoteError(
                f"{self.where} serves {len(served)} models; say which",
                f"set [model] remote_model to one of: {', '.join(served) or '(none)'}",
            )
        return served[0]

    # --- streaming ---------------------------------------------------------------------------

    def stream(
        self, endpoint: str, body: dict[str, Any], should_stop: Callable[[], bool]
    ) -> Iterator[Any]:
        """The parsed ``data:`` chunks of a streamed completion from ``/v1/{endpoint}``
        (``chat/completions``, or ``completions`` for a prompt rendered here)."""
        try:
            response = self._start_stream(endpoint, body, should_stop)
            with response:
                if response.status != 200:
                    detail = response.read()[:300].decode("utf-8", "replace").strip()
                    if response.status in (401, 403):
                        raise self._refused(response.status)
                    raise RemoteError(
                        f"{self.where} answered {response.status}: {detail}",
                        "check [model] remote_model and the server's log",
                    )
                yield from _events(response, should_stop, self.where)
        finally:
            with self._lock:
                self._streaming = None

    def _start_stream(
        self, endpoint: str, body: dict[str, Any], should_stop: Callable[[], bool]
    ) -> http.client.HTTPResponse:
        """The response that will stream, asking again (twice, backing off) when the request
        failed before the server answered it, or the server said it is briefly unavailable."""
        for delay in (*_RETRY_DELAYS, None):
            try:
                response = self._request("POST", f"{self._base}/{endpoint}", body, streaming=True)
            except RemoteError as exc:
                if not exc.retryable or delay is None or should_stop():
                    raise
            else:
                if response.status not in _RETRY_STATUSES or delay is None or should_stop():
                    return response
                response.close()
            time.sleep(delay)
        raise AssertionError("unreachable: the last attempt returns or raises")

    def interrupt(self) -> None:
        """Stop the stream being read now (from any thread): its socket is shut, the read
        returns at once, and the server sees the client go."""
        with self._lock:
            sock = self._streaming
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


def _describe(listing: Any, model: str, props: dict[str, Any] | None) -> tuple[str, int]:
    """The engine's kind and the model's context length, where the server tells them."""
    entry: dict[str, Any] = next(
        (m for m in listing["data"] if isinstance(m, dict) and m.get("id") == model), {}
    )
    if entry.get("max_model_len"):  # vLLM
        return "vllm", int(entry["max_model_len"])
    if props is not None:
        settings = props.get("default_generation_settings", {})
        n_ctx = settings.get("n_ctx") or props.get("n_ctx") or 0
        return "llama-server", int(n_ctx)
    owner = str(entry.get("owned_by", ""))
    return ("ollama" if owner == "library" else "openai-compatible"), 0


def _served_template(props: dict[str, Any] | None) -> TemplateSource | None:
    """llama-server's chat template and special tokens, from its /props."""
    if props is None or not isinstance(props.get("chat_template"), str):
        return None
    if not props["chat_template"].strip():
        return None
    return TemplateSource(
        props["chat_template"],
        str(props.get("bos_token") or ""),
        str(props.get("eos_token") or ""),
        "the server's (/props)",
    )


def _tokens(status: int, answer: Any) -> list[Any] | None:
    """The token list a tokenize endpoint answered with, or None."""
    if status == 200 and isinstance(answer, dict) and isinstance(answer.get("tokens"), list):
        return list(answer["tokens"])
    return None


def _served_models(listing: Any) -> list[str] | None:
    if not isinstance(listing, dict) or not isinstance(listing.get("data"), list):
        return None
    return [str(m.get("id")) for m in listing["data"] if isinstance(m, dict) and m.get("id")]


def _events(
    response: http.client.HTTPResponse, should_stop: Callable[[], bool], where: str
) -> Iterator[Any]:
    """Server-sent events: ``data: {json}`` lines until ``data: [DONE]``."""
    while not should_stop():
        try:
            line = response.readline()
        except TimeoutError as exc:
            raise RemoteError(
                f"{where} sent nothing for too long", "raise [model] read_timeout_sec"
            ) from exc
        except OSError as exc:
            if should_stop():
                return
            raise RemoteError(
                f"the connection to {where} broke mid-reply: {exc}", "the reply so far is kept"
            ) from exc
        if not line:
            if should_stop():
                return
            raise RemoteError(
                f"{where} closed the connection mid-reply", "the reply so far is kept; try again"
            )
        text = line.decode("utf-8", "replace").strip()
        if not text.startswith("data:"):
            continue  # blank lines between events, comments, event names
        data = text[5:].strip()
        if data == "[DONE]":
            return
        try:
            yield json.loads(data)
        except ValueError as exc:
            raise RemoteError(
                f"{where} sent something that is not a stream of JSON events: {data[:80]!r}",
                "is it an OpenAI-compatible server?",
            ) from exc
