"""What a client asks `llamachat serve` for: a Responses-API request body, checked.

Checked in full before anything runs, so a bad request changes nothing and its error names the
field and what to send instead (a 400 with an OpenAI-style ``error`` object).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from tui_agent.agent.conversation import Message
from tui_agent.agent.worker import ToolChoice

# A response id names the session it belongs to, so `previous_response_id` continues that
# session even after the server restarted: resp_<session id>_<serial>.
_RESPONSE_ID = re.compile(r"^resp_([0-9a-zA-Z]+)_[0-9a-zA-Z]+$")
_TEXT_PARTS = ("input_text", "output_text", "text")
_ROLES = ("user", "assistant", "system", "developer")


class BadRequest(Exception):
    """A request the server will not run: the HTTP status, the message and the field."""

    def __init__(self, message: str, param: str | None = None, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.status = status

    def body(self) -> dict[str, Any]:
        kind = "invalid_request_error" if self.status < 500 else "server_error"
        return {"error": {"message": self.message, "type": kind, "param": self.param, "code": None}}


@dataclass(frozen=True)
class Approval:
    """A client's answer to an approval request (an ``mcp_approval_response`` input item)."""

    request_id: str
    approve: bool
    reason: str = ""


@dataclass
class TurnRequest:
    prompt: str = ""  # the new user message ("" when the input only answers approvals)
    history: list[Message] = field(default_factory=list)  # earlier messages a client sent along
    system: str | None = None  # instructions and system/developer messages, joined
    approvals: list[Approval] = field(default_factory=list)
    session: str | None = None  # the session to continue
    continues_response: str | None = None  # previous_response_id, as given
    stream: bool = False
    temperature: float | None = None
    top_p: float | None = None
    max_output_tokens: int | None = None
    force_tool: str | None = None  # tool_choice {"type": "function", "name": …}
    tool_choice: ToolChoice = "auto"  # or "none", "required"
    store: bool = True  # False: the session is not saved, and cannot be continued


def session_of_response(response_id: str) -> str | None:
    match = _RESPONSE_ID.match(response_id)
    return match.group(1) if match else None


def parse_turn_request(body: Any) -> TurnRequest:
    if not isinstance(body, dict):
        raise BadRequest("the request body must be a JSON object")
    request = TurnRequest(
        stream=_flag(body, "stream"),
        store=_flag(body, "store", default=True),
        temperature=_number(body, "temperature", 0.0, 5.0),
        top_p=_number(body, "top_p", 0.0, 1.0),
        max_output_tokens=_count(body, "max_output_tokens"),
    )
    _refuse_client_tools(body)
    request.tool_choice, request.force_tool = _tool_choice(body.get("tool_choice"))
    _continuation(body, request)
    instructions = _optional_str(body, "instructions")
    if "input" not in body:
        raise BadRequest(
            'the request has no "input": send {"input": "your prompt"} or a list of messages',
            "input",
        )
    _input(body["input"], request)
    system = [text for text in (instructions, request.system) if text]
    request.system = "\n\n".join(system) if system else None
    if not request.store and request.session is not None and not request.approvals:
        raise BadRequest(
            "store: false starts a session that is not saved; a saved session records every"
            " turn: leave store out to continue it, or send the whole conversation as input",
            "store",
        )
    if request.session is not None and request.history:
        raise BadRequest(
            "a continued session keeps its own earlier messages: send only the new user message"
            " (or start a new session without previous_response_id)",
            "input",
        )
    return request


def _input(value: Any, request: TurnRequest) -> None:
    if isinstance(value, str):
        request.prompt = _prompt_text(value)
        return
    if not isinstance(value, list) or not value:
        raise BadRequest("input must be a string or a non-empty list of items", "input")
    messages: list[Message] = []
    system: list[str] = []
    for index, item in enumerate(value):
        where = f"input[{index}]"
        if not isinstance(item, dict):
            raise BadRequest(f"{where} must be an object", where)
        kind = item.get("type", "message")
        if kind == "mcp_approval_response":
            request.approvals.append(_approval(item, where))
        elif kind == "message":
            role, text = _message(item, where)
            if role in ("system", "developer"):
                system.append(text)
            else:
                messages.append(Message("user" if role == "user" else "assistant", text))
        elif kind in ("function_call_output", "function_call"):
            raise BadRequest(
                f"{where}: llamachat runs its own tools and sends their results to the model;"
                " a client cannot add tool calls or results",
                where,
            )
        else:
            raise BadRequest(
                f"{where}: unsupported item type {kind!r} (use message or mcp_approval_response)",
                f"{where}.type",
            )
    request.system = "\n\n".join(system) if system else None
    if request.approvals:
        if messages:
            raise BadRequest(
                "answer approval requests in a request of their own (the turn that asked goes on"
                " with them); send the next message after it",
                "input",
            )
        if request.session is None:
            raise BadRequest(
                "an mcp_approval_response needs previous_response_id: the response that asked",
                "previous_response_id",
            )
        return
    if not messages or messages[-1].role != "user":
        raise BadRequest("the last input message must be the user's new message", "input")
    request.prompt = _prompt_text(messages[-1].content)
    request.history = messages[:-1]


def _message(item: dict[str, Any], where: str) -> tuple[str, str]:
    role = item.get("role")
    if role not in _ROLES:
        raise BadRequest(f"{where}.role must be one of {', '.join(_ROLES)}", f"{where}.role")
    content = item.get("content")
    if isinstance(content, str):
        return role, content
    if not isinstance(content, list):
        raise BadRequest(f"{where}.content must be a string or a list of parts", f"{where}.content")
    texts = []
    for number, part in enumerate(content):
        spot = f"{where}.content[{number}]"
        if not isinstance(part, dict) or part.get("type") not in _TEXT_PARTS:
            kind = part.get("type") if isinstance(part, dict) else type(part).__name__
            raise BadRequest(
                f"{spot}: only text parts are supported (input_text), not {kind!r}", spot
            )
        text = part.get("text")
        if not isinstance(text, str):
            raise BadRequest(f"{spot}.text must be a string", f"{spot}.text")
        texts.append(text)
    return role, "".join(texts)


def _approval(item: dict[str, Any], where: str) -> Approval:
    request_id = item.get("approval_request_id")
    approve = item.get("approve")
    reason = item.get("reason") or ""
    if not isinstance(request_id, str) or not request_id:
        raise BadRequest(
            f"{where}.approval_request_id must name the mcp_approval_request being answered",
            f"{where}.approval_request_id",
        )
    if not isinstance(approve, bool):
        raise BadRequest(f"{where}.approve must be true or false", f"{where}.approve")
    if not isinstance(reason, str):
        raise BadRequest(f"{where}.reason must be a string", f"{where}.reason")
    return Approval(request_id, approve, reason)


def _continuation(body: dict[str, Any], request: TurnRequest) -> None:
    previous = _optional_str(body, "previous_response_id")
    session = _optional_str(body, "session")
    if previous is not None:
        request.continues_response = previous
        request.session = session_of_response(previous)
        if request.session is None:
            raise BadRequest(
                f"previous_response_id {previous!r} is not a response id of this server"
                " (resp_<session>_<n>)",
                "previous_response_id",
            )
    if session is not None:
        if request.session is not None and request.session != session:
            raise BadRequest(
                "previous_response_id and session name different sessions; send one of them",
                "session",
            )
        request.session = session


def _refuse_client_tools(body: dict[str, Any]) -> None:
    if body.get("tools"):
        raise BadRequest(
            "llamachat serves its own tools (`llamachat tools list`); client-defined tools are"
            " not supported: leave tools out",
            "tools",
        )


def _tool_choice(value: Any) -> tuple[ToolChoice, str | None]:
    """ "auto" (or nothing) leaves it to the model, "none" offers no tools, "required" makes the
    first model call a call of any tool, {"type": "function", "name": …} a call of that one."""
    if value is None or value == "auto":
        return "auto", None
    if value in ("none", "required"):
        return value, None
    if isinstance(value, dict) and value.get("type") == "function":
        name = value.get("name")
        if isinstance(name, str) and name:
            return "required", name
    raise BadRequest(
        'tool_choice must be "auto", "none", "required" or {"type": "function", "name": TOOL}'
        " (a tool of `llamachat tools list`)",
        "tool_choice",
    )


def _prompt_text(text: str) -> str:
    if not text.strip():
        raise BadRequest("the user's message is empty", "input")
    return text


def _flag(body: dict[str, Any], name: str, default: bool = False) -> bool:
    value = body.get(name, default)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise BadRequest(f"{name} must be true or false", name)
    return value


def _number(body: dict[str, Any], name: str, lo: float, hi: float) -> float | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not lo <= value <= hi:
        raise BadRequest(f"{name} must be a number from {lo:g} to {hi:g}", name)
    return float(value)


def _count(body: dict[str, Any], name: str) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise BadRequest(f"{name} must be a whole number of 1 or more", name)
    return value


def _optional_str(body: dict[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise BadRequest(f"{name} must be a non-empty string", name)
    return value
