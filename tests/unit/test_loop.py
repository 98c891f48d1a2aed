"""The agent loop, driven by a scripted model: deterministic flows and failure paths."""

from __future__ import annotations

import json
from dataclasses import replace

from tests.scripted import FunctionTools, ScriptedBackend
from tui_agent.agent.conversation import Conversation, Message
from tui_agent.agent.loop import (
    FINAL_ANSWER_INSTRUCTION,
    LoopControl,
    compact_now,
    run_agent_loop,
)
from tui_agent.config import AgentConfig
from tui_agent.events import (
    Completed,
    ContextCompacted,
    Error,
    Event,
    IterationStart,
    Notice,
    ReasoningDelta,
    TextDelta,
    ToolResult,
    TurnStatistics,
)
from tui_agent.tools.base import ToolCall

CONFIG = AgentConfig()


def call(name: str, **arguments: object) -> str:
    return f"<tool_call>{json.dumps({'name': name, 'arguments': arguments})}</tool_call>"


def weather_tools() -> FunctionTools:
    def get_weather(city: str) -> str:
        """Current weather for a city."""
        return f"sunny in {city}, 21C"

    return FunctionTools().add("get_weather", get_weather, {"city": {"type": "string"}}, ["city"])


def run(
    backend: ScriptedBackend,
    text: str,
    tools: FunctionTools | None = None,
    config: AgentConfig = CONFIG,
    conversation: Conversation | None = None,
    control: LoopControl | None = None,
) -> tuple[list[Event], Conversation]:
    events: list[Event] = []
    conversation = conversation or Conversation()
    run_agent_loop(
        backend, conversation, text, tools or FunctionTools(), config, events.append, control
    )
    return events, conversation


def text_of(events: list[Event]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


def completed(events: list[Event]) -> Completed:
    last = events[-1]
    assert isinstance(last, Completed)
    return last


def test_plain_answer_streams_and_completes() -> None:
    events, conversation = run(ScriptedBackend(["Hello there, friend!"]), "hi")
    assert text_of(events) == "Hello there, friend!"
    assert sum(isinstance(e, TextDelta) for e in events) > 1, "the reply must stream in pieces"
    assert completed(events) == Completed("done", "Hello there, friend!")
    assert [m.role for m in conversation.messages] == ["user", "assistant"]
    assert isinstance(events[0], IterationStart) and any(
        isinstance(e, TurnStatistics) for e in events
    )


def test_tool_call_result_then_answer() -> None:
    tools = weather_tools()
    backend = ScriptedBackend(
        ["Let me check.\n" + call("get_weather", city="Oslo"), "It is sunny in Oslo."]
    )
    events, conversation = run(backend, "weather in Oslo?", tools)
    kinds = [type(e).__name__ for e in events if not isinstance(e, TextDelta | TurnStatistics)]
    assert kinds == ["IterationStart", "ToolStart", "ToolResult", "IterationStart", "Completed"]
    assert tools.ran == [ToolCall("call00001", "get_weather", {"city": "Oslo"})]
    result = next(e for e in events if isinstance(e, ToolResult))
    assert result.success and result.output == "sunny in Oslo, 21C"
    assert "<tool_call>" not in text_of(events), "tool-call markup must never reach the text stream"
    assert text_of(events) == "Let me check.\nIt is sunny in Oslo."
    # The second prompt carries the call and its result, rendered through the template.
    assert "sunny in Oslo, 21C" in backend.prompts[1] and '"city": "Oslo"' in backend.prompts[1]
    assert backend.prompts[1].startswith(backend.prompts[0][: len(backend.prompts[0]) - 40])
    assert [m.role for m in conversation.messages] == ["user", "assistant", "tool", "assistant"]
    assert completed(events).reason == "done"


def test_prompt_only_grows_at_its_end_across_turns() -> None:
    backend = ScriptedBackend(["one", "two"])
    conversation = Conversation()
    run(backend, "first", conversation=conversation)
    run(backend, "second", conversation=conversation)
    first, second = backend.prompts
    assert second.startswith(first), (
        "an earlier part of the prompt changed: the KV cache would be lost"
    )


def test_malformed_call_gets_an_error_result_and_the_model_retries() -> None:
    tools = weather_tools()
    backend = ScriptedBackend(
        [
            '<tool_call>{"name": "get_weather", "arguments": {city: Oslo}}</tool_call>',
            call("get_weather", city="Oslo"),
            "Sunny.",
        ]
    )
    events, _ = run(backend, "weather?", tools)
    results = [e for e in events if isinstance(e, ToolResult)]
    assert (
        not results[0].success
        and "could not be read" in results[0].output
        and "invalid JSON" in results[0].output
    )
    assert results[1].success
    assert "could not be read" in backend.prompts[1]
    assert completed(events).reason == "done"


def test_unknown_tool_and_bad_arguments_are_reported_to_the_model() -> None:
    tools = weather_tools()
    backend = ScriptedBackend(
        [
            call("get_wether", city="Oslo"),
            call("get_weather", town="Oslo"),
            call("get_weather", city=5),
            "ok",
        ]
    )
    events, _ = run(backend, "weather?", tools)
    outputs = [e.output for e in events if isinstance(e, ToolResult)]
    assert "unknown tool 'get_wether'. Available tools: get_weather" in outputs[0]
    assert "missing required argument 'city'" in outputs[1]
    assert "argument 'city' should be string, got int" in outputs[2]
    assert tools.ran == [], "invalid calls must not run"


def test_max_iterations_stops_the_loop() -> None:
    tools = weather_tools()
    backend = ScriptedBackend([call("get_weather", city=f"c{i}") for i in range(10)])
    events, _ = run(backend, "go", tools, replace(CONFIG, max_iterations=3))
    assert completed(events).reason == "max_iterations"
    assert len(tools.ran) == 3 and len(backend.prompts) == 3


def test_zero_max_iterations_means_unlimited() -> None:
    tools = weather_tools()
    backend = ScriptedBackend([call("get_weather", city=f"c{i}") for i in range(25)] + ["done"])
    events, _ = run(backend, "go", tools, replace(CONFIG, max_iterations=0))
    assert completed(events).reason == "done" and len(tools.ran) == 25


def test_a_repeated_call_gets_a_final_answer_without_tools() -> None:
    tools = weather_tools()
    backend = ScriptedBackend(
        [call("get_weather", city="Oslo"), call("get_weather", city="Oslo"), "Sunny, 21C."]
    )
    events, conversation = run(backend, "weather in Oslo?", tools)
    assert len(tools.ran) == 1, "the repeat is not run"
    done = completed(events)
    assert done.reason == "done" and done.text == "Sunny, 21C." and text_of(events) == "Sunny, 21C."
    notices = [e.message for e in events if isinstance(e, Notice)]
    assert any("same arguments again; tools withheld" in n for n in notices)
    final = backend.prompts[-1]
    assert final.rstrip().endswith(f"{FINAL_ANSWER_INSTRUCTION}<|im_end|>\n<|im_start|>assistant")
    assert "<tools>" not in final and "<tools>" in backend.prompts[0]
    assert FINAL_ANSWER_INSTRUCTION not in [m.content for m in conversation.messages]
    assert conversation.messages[-1] == Message("assistant", "Sunny, 21C.")


def test_identical_calls_far_apart_trip_the_guard_at_the_limit() -> None:
    tools = weather_tools()
    a, b = call("get_weather", city="A"), call("get_weather", city="B")
    backend = ScriptedBackend([a, b, a, b, a, "A and B are sunny."])
    events, _ = run(backend, "go", tools)
    assert [c.arguments["city"] for c in tools.ran] == ["A", "B", "A", "B"]
    assert completed(events) == Completed("done", "A and B are sunny.")


def test_a_failed_call_may_be_tried_again() -> None:
    attempts: list[str] = []

    def flaky(city: str) -> str:
        """Weather that fails the first time."""
        attempts.append(city)
        if len(attempts) == 1:
            raise RuntimeError("timeout")
        return "sunny"

    tools = FunctionTools().add("get_weather", flaky, {"city": {"type": "string"}}, ["city"])
    backend = ScriptedBackend([call("get_weather", city="Oslo")] * 2 + ["Sunny."])
    events, _ = run(backend, "go", tools)
    assert attempts == ["Oslo", "Oslo"] and completed(events) == Completed("done", "Sunny.")


def test_calls_that_cannot_run_trip_the_guard_and_carry_no_example() -> None:
    tools = weather_tools()
    backend = ScriptedBackend(
        [
            '<tool_call>{"name": "get_weather", "arguments": {city}}</tool_call>',
            call("get_wether", city="Oslo"),
            call("get_weather", town="Oslo"),
            "I could not.",
        ]
    )
    events, _ = run(backend, "go", tools)
    assert tools.ran == [] and completed(events) == Completed("done", "I could not.")
    outputs = [e.output for e in events if isinstance(e, ToolResult)]
    assert len(outputs) == 3 and not any('"name"' in o or "TOOL" in o for o in outputs)
    assert FINAL_ANSWER_INSTRUCTION in backend.prompts[-1]


def test_a_final_call_that_calls_again_ends_without_an_answer() -> None:
    tools = weather_tools()
    backend = ScriptedBackend([call("get_weather", city="Oslo")] * 3)
    events, conversation = run(backend, "go", tools)
    assert len(tools.ran) == 1 and completed(events) == Completed("repeated_tool_call", "")
    assert "<tool_call>" not in text_of(events)
    assert (
        conversation.messages[-1].role == "assistant" and not conversation.messages[-1].tool_calls
    )


def test_calls_after_the_one_that_trips_still_get_results() -> None:
    tools = weather_tools()
    oslo = call("get_weather", city="Oslo")
    backend = ScriptedBackend([oslo, oslo + call("get_weather", city="Rome"), "Sunny."])
    events, conversation = run(backend, "go", tools)
    assert [c.arguments["city"] for c in tools.ran] == ["Oslo"]
    calls = [c.id for m in conversation.messages for c in m.tool_calls]
    results = [m.tool_call_id for m in conversation.messages if m.role == "tool"]
    assert calls == results and completed(events).reason == "done"


def test_text_around_calls_is_kept() -> None:
    tools = weather_tools()
    backend = ScriptedBackend(["Before. " + call("get_weather", city="A") + " After.", "Final."])
    events, conversation = run(backend, "x", tools)
    assert conversation.messages[1].content == "Before.\nAfter."
    assert text_of(events).startswith("Before.") and "After." in text_of(events)


def test_bare_json_tool_call_is_held_back_and_run() -> None:
    tools = weather_tools()
    backend = ScriptedBackend(['{"name": "get_weather", "arguments": {"city": "Rome"}}', "Sunny."])
    events, _ = run(backend, "x", tools)
    assert tools.ran and text_of(events) == "Sunny."


def test_reply_cut_at_max_tokens_is_length() -> None:
    backend = ScriptedBackend(["a long reply that was cut"], finish_reason="length")
    events, _ = run(backend, "x")
    assert completed(events).reason == "length"


def test_cancel_mid_stream_keeps_partial_and_next_prompt_works() -> None:
    backend = ScriptedBackend(["This reply will be interrupted halfway through.", "Second answer."])
    control = LoopControl()
    conversation = Conversation()
    events: list[Event] = []

    def sink(event: Event) -> None:
        events.append(event)
        if isinstance(event, TextDelta) and len(text_of(events)) >= 6:
            control.cancel.set()

    run_agent_loop(backend, conversation, "go", FunctionTools(), CONFIG, sink, control)
    assert completed(events).reason == "cancelled"
    partial = conversation.messages[-1]
    assert partial.interrupted and partial.content == text_of(events)
    assert 6 <= len(partial.content) < 20
    control.cancel.clear()
    events2, _ = run(backend, "again", conversation=conversation, control=control)
    assert completed(events2) == Completed("done", "Second answer.")
    assert backend.prompts[1].startswith(backend.prompts[0])


def test_cancel_between_tool_calls_skips_the_rest() -> None:
    control = LoopControl()
    ran: list[str] = []

    def slow(city: str) -> str:
        """Cancels as a side effect, like a user pressing Esc during the call."""
        ran.append(city)
        control.cancel.set()
        return "done"

    tools = FunctionTools().add("slow", slow, {"city": {"type": "string"}}, ["city"])
    backend = ScriptedBackend([call("slow", city="a") + call("slow", city="b"), "never"])
    events, conversation = run(backend, "x", tools, control=control)
    assert ran == ["a"] and completed(events).reason == "cancelled"
    outputs = [e.output for e in events if isinstance(e, ToolResult)]
    assert outputs == ["done", "cancelled by the user before it ran"]
    assert conversation.messages[-1].role == "tool", "every call keeps its result"


def long_conversation(turns: int) -> Conversation:
    conversation = Conversation()
    for i in range(turns):
        conversation.append(Message("user", f"question {i} " + "words " * 30))
        conversation.append(
            Message(
                "assistant", "", tool_calls=[ToolCall(f"c{i}", "get_weather", {"city": str(i)})]
            )
        )
        conversation.append(
            Message("tool", f"result {i} " + "data " * 30, tool_call_id=f"c{i}", name="get_weather")
        )
        conversation.append(Message("assistant", f"answer {i} " + "text " * 30))
    return conversation


def test_compaction_when_the_context_fills() -> None:
    conversation = long_conversation(6)
    backend = ScriptedBackend(
        ["Fine."], n_ctx=1500, summaries=["The user asked six weather questions."]
    )
    config = replace(CONFIG, compaction_keep_recent=3)
    events, conversation = run(backend, "and now?", weather_tools(), config, conversation)
    compacted = next(e for e in events if isinstance(e, ContextCompacted))
    assert (
        compacted.messages_before == 25
        and compacted.messages_after == conversation.messages.__len__() - 1
    )
    assert compacted.context_size == 1500 and compacted.prompt_tokens < 0.75 * 1500
    assert conversation.messages[0].role != "tool", "a tool result must never lose its call"
    assert "The user asked six weather questions." in backend.prompts[0]
    assert "question 0" not in backend.prompts[0]
    assert "Summarize the conversation" in backend.summary_prompts[0]
    for kept in ("goals", "decisions", "file paths", "what remains", "errors"):
        assert kept in backend.summary_prompts[0]
    assert completed(events).reason == "done"


def test_a_model_that_writes_no_summary_leaves_a_digest() -> None:
    backend = ScriptedBackend(["Fine."], n_ctx=1500, summaries=["   "])
    config = replace(CONFIG, compaction_keep_recent=3)
    events, conversation = run(backend, "and now?", weather_tools(), config, long_conversation(6))
    compacted = next(e for e in events if isinstance(e, ContextCompacted))
    assert compacted.summary.startswith("Earlier the user wrote: ")
    assert "question 0" in compacted.summary and conversation.summaries == [compacted.summary]


def test_cut_point_never_splits_a_call_from_its_result() -> None:
    from tui_agent.agent.compaction import safe_cut

    messages = long_conversation(2).messages  # u, a(call), tool, a, u, a(call), tool, a
    for keep in range(len(messages) + 1):
        cut = safe_cut(messages, keep)
        assert cut == 0 or cut == len(messages) or messages[cut].role != "tool"
        assert len(messages) - cut >= min(keep, len(messages))


def test_long_history_is_summarized_in_chunks() -> None:
    conversation = long_conversation(12)
    backend = ScriptedBackend(
        ["ok"],
        n_ctx=900,
        summaries=[
            "part one",
            "part one and two",
            "all parts",
            "all parts+",
            "all parts++",
            "final summary",
        ],
    )
    config = replace(CONFIG, compaction_keep_recent=2)
    events, _ = run(backend, "next", weather_tools(), config, conversation)
    assert len(backend.summary_prompts) >= 2, (
        "the old part does not fit one call; it must be chunked"
    )
    assert "Summary so far:" in backend.summary_prompts[1]
    for prompt in backend.summary_prompts:
        assert backend.count_tokens(prompt) < 900
    assert any(isinstance(e, ContextCompacted) for e in events)


def test_when_compaction_cannot_make_room_it_says_so() -> None:
    conversation = Conversation()
    backend = ScriptedBackend(["never"], n_ctx=256)
    events, _ = run(backend, "x " * 2000, config=CONFIG, conversation=conversation)
    errors = [e for e in events if isinstance(e, Error)]
    assert errors and "more than the context" in errors[0].message and errors[0].kind == "context"
    assert "/new" not in errors[0].hint, "the front end names its own command"
    assert completed(events).reason == "error" and backend.prompts == []


def test_no_auto_compaction_when_disabled() -> None:
    backend = ScriptedBackend(["ok"], n_ctx=1500)
    events, _ = run(
        backend,
        "more",
        config=replace(CONFIG, auto_compact=False),
        conversation=long_conversation(5),
    )
    assert not any(isinstance(e, ContextCompacted) for e in events)


def test_manual_compaction() -> None:
    backend = ScriptedBackend([], summaries=["manual summary"])
    conversation = long_conversation(3)
    events: list[Event] = []
    assert compact_now(
        backend,
        conversation,
        weather_tools(),
        replace(CONFIG, compaction_keep_recent=2),
        events.append,
    )
    compacted = next(e for e in events if isinstance(e, ContextCompacted))
    assert compacted.manual and conversation.summaries == ["manual summary"]
    short: list[Event] = []
    assert not compact_now(backend, Conversation(), weather_tools(), CONFIG, short.append)
    assert isinstance(short[0], Notice) and "nothing to compact" in short[0].message


def test_grammar_is_requested_on_the_first_call_only() -> None:
    tools = weather_tools()
    backend = ScriptedBackend([call("get_weather", city="Oslo"), "done"])
    events: list[Event] = []
    run_agent_loop(
        backend, Conversation(), "x", tools, CONFIG, events.append, force_tools=tools.specs()
    )
    assert backend.grammars == [tools.specs(), None]


def test_template_without_tool_support_describes_tools_in_the_system_prompt() -> None:
    from tui_agent.engine.fallback_templates import CHATML

    tools = weather_tools()
    backend = ScriptedBackend(
        [call("get_weather", city="Oslo"), "Sunny."], template=CHATML.template, tool_format="tagged"
    )
    assert backend.tool_format == "tagged"
    events, _ = run(backend, "weather?", tools)
    assert "# Tools" in backend.prompts[0] and '"name": "get_weather"' in backend.prompts[0]
    assert "<tool_response name='get_weather'>" in backend.prompts[1]
    assert completed(events).reason == "done"


def test_forced_call_cut_short_is_reported_to_the_model() -> None:
    tools = weather_tools()
    backend = ScriptedBackend(['{"name": "get_weather", "argum', "ok"], finish_reason="length")
    events: list[Event] = []
    run_agent_loop(
        backend, Conversation(), "x", tools, CONFIG, events.append, force_tools=tools.specs()
    )
    result = next(e for e in events if isinstance(e, ToolResult))
    assert not result.success and "cut off at max_tokens_per_completion" in result.output
    assert tools.ran == [] and text_of(events) == "ok", "the cut call itself is never shown as text"


def test_tool_schemas_reach_the_prompt_without_generated_titles() -> None:
    from tui_agent.engine.fallback_templates import CHATML
    from tui_agent.tools.base import ToolSpec, without_titles

    schema = {
        "type": "object",
        "title": "readArguments",
        "properties": {"title": {"type": "string", "title": "Title"}},
        "required": ["title"],
    }
    assert without_titles(schema) == {
        "type": "object",
        "properties": {"title": {"type": "string"}},
        "required": ["title"],
    }
    tools = FunctionTools()
    tools.functions["read"] = (ToolSpec("read", "Read", schema), lambda title: title)
    for template in (CHATML.template, None):
        backend = (
            ScriptedBackend(["ok"], template=template) if template else ScriptedBackend(["ok"])
        )
        run(backend, "x", tools)
        assert "readArguments" not in backend.prompts[0] and '"Title"' not in backend.prompts[0]
        assert '"title": {"type": "string"}' in backend.prompts[0]


# Gemma-style: no tools in the template, and roles must alternate starting with the user.
STRICT_TEMPLATE = (
    "{% set turns = messages[1:] %}{% for m in turns %}"
    "{% if (m['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}"
    "{% endif %}<start_of_turn>{{ m['role'] }}\n{{ m['content'] }}<end_of_turn>\n"
    "{% endfor %}<start_of_turn>model\n"
)


def test_compaction_keeps_roles_alternating_for_strict_templates() -> None:
    """The kept part starts with the model's turn (a tool call); a user stub goes first."""
    tools = weather_tools()
    backend = ScriptedBackend(["It is sunny."], template=STRICT_TEMPLATE, summaries=["S"])
    conversation = Conversation()
    conversation.messages = [
        Message("user", "weather in Oslo?"),
        Message("assistant", "", tool_calls=[ToolCall("call_1", "get_weather", {"city": "Oslo"})]),
        Message("tool", "sunny", tool_call_id="call_1", name="get_weather"),
        Message("assistant", "Sunny."),
        Message("user", "and Rome?"),
        Message("assistant", "", tool_calls=[ToolCall("call_2", "get_weather", {"city": "Rome"})]),
        Message("tool", "sunny", tool_call_id="call_2", name="get_weather"),
    ]
    events: list[Event] = []
    config = replace(CONFIG, compaction_keep_recent=2)
    assert compact_now(backend, conversation, tools, config, events.append)
    assert conversation.messages[0].role == "assistant", "the cut kept the call with its result"
    events, _ = run(backend, "thanks", tools, conversation=conversation)
    assert completed(events) == Completed("done", "It is sunny.")
    assert "<start_of_turn>user\n(The earlier conversation is summarized" in backend.prompts[-1]


def test_reasoning_is_its_own_event_and_saved_with_the_reply() -> None:
    backend = ScriptedBackend(["<think>\nOslo is in Norway.\n</think>\n\nIt is in Norway."])
    events, conversation = run(backend, "Where is Oslo?")
    thought = "".join(e.text for e in events if isinstance(e, ReasoningDelta))
    assert thought.strip() == "Oslo is in Norway." and text_of(events) == "It is in Norway."
    assert completed(events) == Completed("done", "It is in Norway.")
    assert conversation.messages[-1] == Message(
        "assistant", "It is in Norway.", reasoning="Oslo is in Norway."
    )
    rendered = conversation.for_template([], "template")[-1]
    assert rendered["reasoning_content"] == "Oslo is in Norway."
    assert "<think>" not in rendered["content"]


def test_a_template_that_takes_one_call_per_turn_gets_the_first() -> None:
    tools = weather_tools()
    backend = ScriptedBackend(
        [call("get_weather", city="Oslo") + call("get_weather", city="Rome"), "Both sunny."],
        parallel_calls=False,
    )
    events, conversation = run(backend, "weather?", tools)
    assert [c.arguments["city"] for c in tools.ran] == ["Oslo"]
    assert any("takes one, so the first runs" in e.message for e in events if isinstance(e, Notice))
    assert [len(m.tool_calls) for m in conversation.messages if m.tool_calls] == [1]


def test_an_empty_reply_after_tool_results_gets_a_final_answer() -> None:
    tools = weather_tools()
    backend = ScriptedBackend(
        [call("get_weather", city="Oslo"), "<tool_response>sunny</tool_response>", "Sunny."]
    )
    events, _ = run(backend, "weather?", tools)
    assert completed(events) == Completed("done", "Sunny.")
    assert FINAL_ANSWER_INSTRUCTION in backend.prompts[-1]
    assert "tool_response" not in text_of(events)


def json_call(name: str, **arguments: object) -> str:
    return json.dumps({"tool_call": {"name": name, "arguments": arguments}})


def json_answer(text: str) -> str:
    return json.dumps({"response": text})


def test_json_replies_on_a_template_without_tools() -> None:
    from tui_agent.engine.fallback_templates import CHATML

    tools = weather_tools()
    backend = ScriptedBackend(
        [json_call("get_weather", city="Oslo"), json_answer('Sunny "and" 21°C in Oslo.\n')],
        template=CHATML.template,
        tool_format="json",
    )
    assert ScriptedBackend([], template=CHATML.template).tool_format == "tagged", "auto"
    events, conversation = run(backend, "weather?", tools)
    assert [c.arguments for c in tools.ran] == [{"city": "Oslo"}]
    assert text_of(events) == 'Sunny "and" 21°C in Oslo.\n', "the answer, decoded; no JSON"
    assert completed(events) == Completed("done", 'Sunny "and" 21°C in Oslo.')
    assert backend.offered == [tools.specs(), tools.specs()], "each reply held to the grammar"
    assert '"tool_call": {"name": "<tool name>"' in backend.prompts[0]
    # The call is shown back to the model as it wrote it, and the result as a user turn.
    assert json_call("get_weather", city="Oslo") in backend.prompts[1]
    assert "<tool_response name='get_weather'>" in backend.prompts[1]
    assert conversation.messages[1].tool_calls[0].name == "get_weather"


def test_json_replies_final_answer_is_held_to_an_answer() -> None:
    from tui_agent.engine.fallback_templates import CHATML

    tools = weather_tools()
    again = json_call("get_weather", city="Oslo")
    backend = ScriptedBackend(
        [again, again, json_answer("Sunny.")], template=CHATML.template, tool_format="json"
    )
    events, _ = run(backend, "weather?", tools)
    assert len(tools.ran) == 1 and completed(events) == Completed("done", "Sunny.")
    assert backend.offered[-1] == [], "the final call: an answer only"
    assert '{"response": "<your answer>"}' in backend.prompts[-1]
    assert '"name": "get_weather"' not in backend.prompts[-1].split("<|im_end|>")[0]


def test_json_replies_are_off_without_tools() -> None:
    from tui_agent.engine.fallback_templates import CHATML

    backend = ScriptedBackend(["Plain words."], template=CHATML.template, tool_format="json")
    events, _ = run(backend, "hi")
    assert text_of(events) == "Plain words." and backend.offered == [[]]
    assert "JSON" not in backend.prompts[0]


def test_clipped_cuts_between_words() -> None:
    from tui_agent.commands.headless import clipped

    text = "The user did not allow this call to run_shell; it was not run. Do not try it again."
    assert clipped(text, 200) == text
    assert clipped(text, 70) == "The user did not allow this call to run_shell; it was not run. Do…"
    assert clipped("x" * 50, 20) == "x" * 19 + "…", "one long word is cut where it must be"
