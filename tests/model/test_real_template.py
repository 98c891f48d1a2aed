"""The real Qwen2.5 chat template (read from the GGUF the eval test fetches, not loaded): what
llamachat renders for a tool turn, and that the parser reads the rendered call back."""

from __future__ import annotations

import pytest

from tests.tool_model import tool_model
from tui_agent.agent.conversation import Conversation, Message
from tui_agent.agent.tool_calls import ParsedCall, detect_family, parse_reply
from tui_agent.engine.chat_template import ChatRenderer
from tui_agent.models.gguf import read_gguf
from tui_agent.tools.base import ToolCall, ToolSpec

pytestmark = pytest.mark.model
READ = ToolSpec(
    "read_file",
    "Read a text file.",
    {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]},
)


def test_a_tool_turn_renders_as_the_model_writes_it_and_parses_back() -> None:
    template = read_gguf(tool_model()).chat_template
    assert template is not None and detect_family(template) == "hermes"
    renderer = ChatRenderer(template, bos_token="", eos_token="<|im_end|>")
    conversation = Conversation(system_prompt="Be brief.")
    conversation.messages = [
        Message("user", "What does notes.txt say?"),
        Message("assistant", "", [ToolCall("call00001", "read_file", {"path": "notes.txt"})]),
        Message("tool", "hello", tool_call_id="call00001", name="read_file"),
    ]
    prompt = renderer.render(conversation.for_template([READ], "template"), [READ.for_template()])
    assert prompt.startswith("<|im_start|>system\nBe brief.")
    tools = prompt.split("<tools>\n")[1].split("</tools>")[0]
    assert '"name": "read_file"' in tools, "the tool list, as the template writes it"
    turn = prompt.split("<|im_start|>assistant\n")[1].split("<|im_end|>")[0]
    assert parse_reply(turn).calls == [ParsedCall("read_file", {"path": "notes.txt"})]
    assert "<tool_response>\nhello\n</tool_response>" in prompt
    assert prompt.endswith("<|im_start|>assistant\n")
