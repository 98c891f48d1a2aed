"""A conversation and how it is shown to a chat template.

Messages are only ever appended (or replaced wholesale by compaction), so the rendered prompt only
grows at its end and llama.cpp reuses the KV cache for everything before the new part.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal

from tui_agent.agent.json_replies import (
    ANSWER_ONLY_INSTRUCTION,
    JSON_FORMAT_INSTRUCTION,
    as_json_reply,
)
from tui_agent.tools.base import ToolCall, ToolSpec, without_titles

Role = Literal["system", "user", "assistant", "tool"]
# How the model is told of tools and writes its calls: through the chat template's own tools
# support; as <tool_call> markup described in the system prompt; or as JSON replies (every reply
# a call or an answer, held to that by a grammar; see json_replies.py).
ToolFormat = Literal["template", "tagged", "json"]

# After compaction the kept messages may start with the model's turn; templates that insist on
# user/assistant alternation (Gemma, Mistral) then refuse, so a user turn goes first.
CONTINUE_STUB = "(The earlier conversation is summarized above.) Continue."
DEFAULT_SYSTEM_PROMPT = (
    "You are llamachat, a helpful assistant running locally on the user's computer. "
    "Answer clearly and concisely. Use the tools when they help; never invent tool results."
)


@dataclass
class Message:
    role: Role
    content: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    tool_call_id: str = ""
    name: str = ""
    # The reply was cut short by a cancel (or a crash); the text is what had streamed.
    interrupted: bool = False
    # The model's reasoning before this reply (``<think>``), kept apart from its text.
    reasoning: str = ""
    # The history entry this message is saved as (None until the session store has it).
    store_id: int | None = field(default=None, compare=False)


@dataclass
class Conversation:
    system_prompt: str = DEFAULT_SYSTEM_PROMPT
    messages: list[Message] = field(default_factory=list)
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    # Summaries of compacted history, appended to the system prompt in order.
    summaries: list[str] = field(default_factory=list)
    tool_calls_made: int = 0
    # False: never written to the history (a `serve` request with "store": false).
    saved: bool = True

    def append(self, message: Message) -> None:
        self.messages.append(message)

    def next_call_id(self) -> str:
        # Counter ids keep the rendered prompt identical when it is rendered again; nine
        # letters and digits because Mistral Nemo's template refuses any other id.
        self.tool_calls_made += 1
        n = self.tool_calls_made
        return f"call{n:05d}" if n < 100_000 else f"{n:09d}"

    def system_text(self, tools: list[ToolSpec], tool_format: ToolFormat) -> str:
        text = self.system_prompt
        if tool_format == "json":
            text += "\n\n" + (
                describe_tools_for_prompt(tools, JSON_FORMAT_INSTRUCTION)
                if tools
                else ANSWER_ONLY_INSTRUCTION
            )
        elif tool_format == "tagged" and tools:
            text += "\n\n" + describe_tools_for_prompt(tools, _TAGGED_INSTRUCTION)
        for summary in self.summaries:
            text += "\n\n## Summary of the earlier conversation\n" + summary
        return text

    def for_template(self, tools: list[ToolSpec], tool_format: ToolFormat) -> list[dict[str, Any]]:
        """Messages as chat templates expect them (OpenAI shape).

        Templates that know tools get structured ``tool_calls`` and ``tool`` messages. Others get
        the calls written as the model was asked to write them (``<tool_call>`` markup, or JSON
        replies), the results as user messages, and consecutive messages of one role merged
        (some templates insist on alternating roles).
        """
        rendered: list[dict[str, Any]] = [
            {"role": "system", "content": self.system_text(tools, tool_format)}
        ]
        if self.messages and self.messages[0].role != "user":
            rendered.append({"role": "user", "content": CONTINUE_STUB})
        for message in self.messages:
            rendered.append(_message_for_template(message, tool_format))
        return rendered if tool_format == "template" else _merge_same_roles(rendered)


def _message_for_template(message: Message, tool_format: ToolFormat) -> dict[str, Any]:
    rendered = _plain_message_for_template(message, tool_format)
    if message.reasoning and message.role == "assistant":
        # Templates that know reasoning decide where it goes (Qwen3 keeps it only for the turn
        # in progress); the others ignore the key.
        rendered["reasoning_content"] = message.reasoning
    return rendered


def _plain_message_for_template(message: Message, tool_format: ToolFormat) -> dict[str, Any]:
    if message.role == "assistant" and tool_format == "json":
        called = [(c.name, c.arguments) for c in message.tool_calls]
        return {"role": "assistant", "content": as_json_reply(message.content, called)}
    if message.role == "assistant" and message.tool_calls:
        if tool_format == "template":
            return {
                "role": "assistant",
                "content": message.content,
                "tool_calls": [
                    {
                        "id": c.id,
                        "type": "function",
                        "function": {"name": c.name, "arguments": c.arguments},
                    }
                    for c in message.tool_calls
                ],
            }
        calls = "\n".join(
            f"<tool_call>{json.dumps({'name': c.name, 'arguments': c.arguments}, ensure_ascii=False)}</tool_call>"
            for c in message.tool_calls
        )
        return {"role": "assistant", "content": f"{message.content}\n{calls}".strip()}
    if message.role == "tool":
        if tool_format == "template":
            return {
                "role": "tool",
                "tool_call_id": message.tool_call_id,
                "name": message.name,
                "content": message.content,
            }
        return {
            "role": "user",
            "content": f"<tool_response name={message.name!r}>\n{message.content}\n</tool_response>",
        }
    return {"role": message.role, "content": message.content}


def _merge_same_roles(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    merged: list[dict[str, Any]] = []
    for message in messages:
        if merged and merged[-1]["role"] == message["role"] and message["role"] != "system":
            merged[-1] = {
                **merged[-1],
                "content": f"{merged[-1]['content']}\n\n{message['content']}",
            }
        else:
            merged.append(dict(message))
    return merged


_TAGGED_INSTRUCTION = 'To call one, reply with only:\n<tool_call>{"name": "TOOL_NAME", "arguments": {...}}</tool_call>'


def describe_tools_for_prompt(tools: list[ToolSpec], how_to_call: str) -> str:
    """Tool instructions for templates that cannot render tools themselves."""
    lines = [
        "# Tools",
        "You can call these tools. " + how_to_call,
        "The result comes back in a <tool_response> message. Available tools (JSON schemas):",
    ]
    for spec in tools:
        lines.append(
            json.dumps(
                {
                    "name": spec.name,
                    "description": spec.description,
                    "parameters": without_titles(spec.input_schema),
                },
                ensure_ascii=False,
            )
        )
    return "\n".join(lines)
