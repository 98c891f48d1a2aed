"""The agent loop: one user prompt in, streamed text and tool calls out, until the model answers.

Each iteration renders the whole conversation with the model's chat template (the prompt only
grows at its end, so the KV cache is reused), streams a completion, hides tool-call markup from
the text stream, runs each call through the tool executor (the one entry point, where permissions
are checked), appends the results and goes round again.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from tui_agent.agent.backend import ModelBackend
from tui_agent.agent.compaction import compact_conversation
from tui_agent.agent.conversation import Conversation, Message, ToolFormat
from tui_agent.agent.json_replies import unwrap_json_reply
from tui_agent.agent.tool_calls import (
    MalformedCall,
    ParsedCall,
    ParsedReply,
    ReplySplitter,
    opens_reasoning,
)
from tui_agent.config import AgentConfig
from tui_agent.engine.generation import Sampling, TurnStats
from tui_agent.errors import LlamachatError
from tui_agent.events import (
    Completed,
    Error,
    EventSink,
    IterationStart,
    Notice,
    PermissionDecision,
    PermissionRequest,
    ReasoningDelta,
    TextDelta,
    ToolResult,
    ToolStart,
    TurnStatistics,
    ignore_event,
)
from tui_agent.tools.base import (
    CallContext,
    ToolCall,
    ToolExecutor,
    ToolOutcome,
    ToolSpec,
    argument_errors,
)

# The guard against a model that goes round in circles trips at the first identical repeat of
# the call just made (when it succeeded), at this many identical calls in one prompt, or at this
# many calls that could not be run (unreadable, unknown tool, invalid arguments).
REPEAT_LIMIT = 3
BAD_CALL_LIMIT = 3
# When the guard trips the model is asked once more, with no tools offered, in a user turn:
# small models ignore a warning inside a tool result, but answer this.
FINAL_ANSWER_INSTRUCTION = "Do not call a tool. Answer my question using the tool results above."
_MIN_REPLY_TOKENS = 32


def deny_all(request: PermissionRequest) -> PermissionDecision:
    return PermissionDecision(False, "headless", "no one is there to approve it")


@dataclass
class LoopControl:
    """How the outside world steers a running loop: cancel, and answer permission prompts."""

    cancel: threading.Event = field(default_factory=threading.Event)
    ask: Callable[[PermissionRequest], PermissionDecision] = deny_all

    def cancelled(self) -> bool:
        return self.cancel.is_set()


def sampling_from(config: AgentConfig) -> Sampling:
    return Sampling(
        temperature=config.temperature,
        top_k=config.top_k,
        top_p=config.top_p,
        min_p=config.min_p,
        repeat_penalty=config.repeat_penalty,
        seed=config.seed,
        max_tokens=config.max_tokens_per_completion,
        stop=tuple(config.stop_sequences),
        n_batch=config.n_batch,
    )


class _Run:
    """State of one prompt's run through the loop."""

    def __init__(
        self,
        backend: ModelBackend,
        conversation: Conversation,
        tools: ToolExecutor,
        config: AgentConfig,
        emit: EventSink,
        control: LoopControl,
    ) -> None:
        self.backend = backend
        self.conversation = conversation
        self.tools = tools
        self.specs: list[ToolSpec] = tools.specs()
        self.by_name = {s.name: s for s in self.specs}
        self.config = config
        self.emit = emit
        self.control = control
        self.repeats: dict[str, int] = {}
        self.bad_calls = 0
        # The signature of the last call that ran and whether it succeeded.
        self.previous: tuple[str, bool] | None = None
        self.last_text = ""
        # JSON replies only where there are tools to call: a chat without any answers freely.
        self.tool_format: ToolFormat = backend.tool_format
        if self.tool_format == "json" and not self.specs:
            self.tool_format = "tagged"

    def render(self, final: bool = False) -> str:
        """The prompt; ``final`` leaves the tools out and asks for an answer from the results."""
        tools = [] if final else self.specs
        messages = self.conversation.for_template(tools, self.tool_format)
        if final:
            messages.append({"role": "user", "content": FINAL_ANSWER_INSTRUCTION})
        return self.backend.render(messages, tools)

    def prompt_tokens(self) -> int:
        return self.backend.count_tokens(self.render())

    def fit_context(self, final: bool = False) -> tuple[str, int] | None:
        """The prompt to send and its size, compacting first when the context is filling up."""
        prompt = self.render(final)
        tokens = self.backend.count_tokens(prompt)
        limit = self.config.compaction_threshold_pct * self.backend.n_ctx
        if tokens > limit and self.config.auto_compact:
            compacted = compact_conversation(
                self.backend,
                self.conversation,
                self.config,
                self.emit,
                self.control.cancelled,
                self.prompt_tokens,
            )
            if compacted:
                prompt = self.render(final)
                tokens = self.backend.count_tokens(prompt)
        if tokens + _MIN_REPLY_TOKENS > self.backend.n_ctx:
            self.emit(
                Error(
                    f"the conversation needs {tokens:,} tokens, more than the context of"
                    f" {self.backend.n_ctx:,} allows, and compaction could not make room",
                    "raise [model] n_ctx, lower [agent] compaction_keep_recent, or start a new"
                    " session",
                    "context",
                )
            )
            return None
        return prompt, tokens

    def run(self, force_tools: list[ToolSpec] | None) -> Completed:
        iteration = 0
        limit = self.config.max_iterations
        while limit == 0 or iteration < limit:
            iteration += 1
            self.emit(IterationStart(iteration, limit))
            fitted = self.fit_context()
            if fitted is None:
                return Completed("error", self.last_text)
            if self.control.cancelled():
                return Completed("cancelled", self.last_text)
            prompt, tokens = fitted
            reply_room = self.backend.n_ctx - tokens
            forced = force_tools if iteration == 1 else None
            outcome = self.one_call(iteration, prompt, reply_room, forced)
            if isinstance(outcome, _Tripped):
                return self.final_answer(iteration + 1, outcome.why)
            if outcome is not None:
                return outcome
        self.emit(Notice(f"stopped after {limit} model calls (max_iterations)"))
        return Completed("max_iterations", self.last_text)

    def final_answer(self, iteration: int, why: str) -> Completed:
        """One more model call with the tools withheld; its text is the answer."""
        self.emit(Notice(f"{why}; tools withheld, asking the model to answer from the results"))
        self.emit(IterationStart(iteration, self.config.max_iterations))
        fitted = self.fit_context(final=True)
        if fitted is None:
            return Completed("error", self.last_text)
        prompt, tokens = fitted
        outcome = self.one_call(iteration, prompt, self.backend.n_ctx - tokens, None, final=True)
        # A final call runs no tools, so it always ends the turn; without text it answered nothing.
        if not isinstance(outcome, Completed) or (outcome.reason == "done" and not outcome.text):
            return Completed("repeated_tool_call", "")
        return outcome

    def one_call(
        self,
        iteration: int,
        prompt: str,
        reply_room: int,
        forced: list[ToolSpec] | None,
        final: bool = False,
    ) -> Completed | _Tripped | None:
        """Stream one completion and run its tool calls; a Completed ends the prompt, a
        _Tripped asks for the final answer. A ``final`` call's tool calls are dropped."""
        sampling = sampling_from(self.config)
        max_tokens = min(sampling.max_tokens, reply_room - 1)
        splitter = ReplySplitter(thinking=opens_reasoning(prompt))
        json_replies = self.tool_format == "json" and not forced
        # In JSON replies the final call is held to an answer; elsewhere it offers no tools.
        offered = ([] if json_replies else None) if final else self.specs
        pieces = self.backend.stream(
            prompt,
            Sampling(**{**sampling.__dict__, "max_tokens": max_tokens}),
            self.control.cancelled,
            forced,
            offered,
        )
        if json_replies:
            pieces = unwrap_json_reply(pieces)
        stats = TurnStats()
        while True:
            try:
                visible, thought = splitter.feed(next(pieces))
            except StopIteration as done:
                stats = done.value
                break
            except LlamachatError:
                # The model went away mid-reply (a server's connection broke): what the user
                # saw of the reply is kept, marked interrupted, and the session goes on.
                if splitter.released:
                    self.conversation.append(
                        Message(
                            "assistant",
                            splitter.released,
                            interrupted=True,
                            reasoning=splitter.reasoning,
                        )
                    )
                raise
            if thought:
                self.emit(ReasoningDelta(thought))
            if visible:
                self.emit(TextDelta(visible))
        self.emit(
            TurnStatistics(
                iteration,
                stats.prompt_tokens,
                stats.cached_tokens,
                stats.generated_tokens,
                stats.time_to_first_token,
                stats.tokens_per_second,
                stats.generation_seconds,
                stats.restored_tokens,
                stats.restore_seconds,
                stats.busy_cores,
                stats.drafted_tokens,
                stats.accepted_tokens,
                stats.finish_reason,
            )
        )
        if stats.finish_reason == "cancelled" or self.control.cancelled():
            partial = splitter.released
            self.conversation.append(
                Message("assistant", partial, interrupted=True, reasoning=splitter.reasoning)
            )
            self.last_text = partial
            return Completed("cancelled", partial)
        if held := splitter.unreleased_reasoning:
            self.emit(ReasoningDelta(held))
        reply, rest = splitter.finish()
        if forced and not reply.calls:
            # The grammar only admits a call, so text here means the call was cut short.
            cut = (
                "it was cut off at max_tokens_per_completion"
                if stats.finish_reason == "length"
                else "none was found"
            )
            reply = ParsedReply(
                "",
                [MalformedCall(splitter.buffer, f"a tool call was required but {cut}")],
                reply.reasoning,
            )
            rest = ""
        if final and reply.calls:
            reply, rest = ParsedReply(reply.text, reasoning=reply.reasoning), ""
        if rest:
            self.emit(TextDelta(rest))
        self.last_text = reply.text
        if not reply.calls and not reply.text and not final and self.repeats:
            # Tools ran and the model ended with nothing to say (or only echoed a result).
            return _Tripped("the model ended without an answer")
        if not reply.calls:
            self.conversation.append(Message("assistant", reply.text, reasoning=reply.reasoning))
            return Completed("length" if stats.finish_reason == "length" else "done", reply.text)
        if len(reply.calls) > 1 and not self.backend.parallel_calls:
            self.emit(
                Notice(
                    f"the model wrote {len(reply.calls)} tool calls in one turn; its template"
                    " takes one, so the first runs"
                )
            )
            reply.calls = reply.calls[:1]
        calls = [self.to_tool_call(c) for c in reply.calls]
        self.conversation.append(
            Message(
                "assistant",
                reply.text,
                tool_calls=[c for c, _ in calls],
                reasoning=reply.reasoning,
            )
        )
        tripped: _Tripped | None = None
        for call, problem in calls:
            # Every call gets a result, run or not: templates expect one per call.
            if self.control.cancelled():
                self.record(call, ToolOutcome(False, "cancelled by the user before it ran"))
            elif tripped is not None:
                self.record(call, ToolOutcome(False, "not run: tools were withheld"))
            else:
                tripped = self.run_call(call, problem)
        if self.control.cancelled():
            return Completed("cancelled", self.last_text)
        return tripped

    def to_tool_call(self, parsed: ParsedCall | MalformedCall) -> tuple[ToolCall, str]:
        """A call with its id, and what is wrong with it ("" when it may run). The texts carry
        no example call: small models copy an example back verbatim, turn after turn."""
        call_id = self.conversation.next_call_id()
        if isinstance(parsed, MalformedCall):
            name = parsed.name or "invalid_tool_call"
            return ToolCall(call_id, name, {}), (
                f"your tool call could not be read: {parsed.error}. Write the tool's name and its"
                " arguments as one JSON object, in the format the instructions above give."
            )
        spec = self.by_name.get(parsed.name)
        if spec is None:
            known = ", ".join(self.by_name) or "none"
            return ToolCall(call_id, parsed.name, parsed.arguments), (
                f"unknown tool {parsed.name!r}. Available tools: {known}."
            )
        problems = argument_errors(spec.input_schema, parsed.arguments)
        if problems:
            return ToolCall(call_id, parsed.name, parsed.arguments), (
                f"invalid arguments for {parsed.name}: {'; '.join(problems)}. Fix them and call again."
            )
        return ToolCall(call_id, parsed.name, parsed.arguments), ""

    def run_call(self, call: ToolCall, problem: str) -> _Tripped | None:
        self.emit(ToolStart(call.id, call.name, call.arguments))
        if problem:
            self.record(call, ToolOutcome(False, f"error: {problem}"))
            self.bad_calls += 1
            if self.bad_calls >= BAD_CALL_LIMIT:
                return _Tripped(f"the model made {self.bad_calls} tool calls that could not run")
            return None
        signature = f"{call.name}:{json.dumps(call.arguments, sort_keys=True)}"
        self.repeats[signature] = self.repeats.get(signature, 0) + 1
        count = self.repeats[signature]
        if self.previous == (signature, True) or count >= REPEAT_LIMIT:
            self.record(
                call,
                ToolOutcome(False, "not run: the same call was made before; its result is above"),
            )
            times = "again" if count == 2 else f"{count} times"
            return _Tripped(f"the model called {call.name} with the same arguments {times}")
        context = CallContext(self.emit, self.control.cancelled, self.control.ask)
        try:
            outcome = self.tools.execute(call, context)
        except LlamachatError as exc:
            outcome = ToolOutcome(False, f"error: {exc.message}")
        self.previous = (signature, outcome.success)
        self.record(call, outcome)
        return None

    def record(self, call: ToolCall, outcome: ToolOutcome) -> None:
        self.emit(ToolResult(call.id, call.name, outcome.success, outcome.output, outcome.denied))
        self.conversation.append(
            Message("tool", outcome.output, tool_call_id=call.id, name=call.name)
        )


@dataclass(frozen=True)
class _Tripped:
    """The guard tripped: the prompt ends with an answer written without tools."""

    why: str


def run_agent_loop(
    backend: ModelBackend,
    conversation: Conversation,
    user_text: str,
    tools: ToolExecutor,
    config: AgentConfig,
    emit: EventSink,
    control: LoopControl | None = None,
    force_tools: list[ToolSpec] | None = None,
) -> Completed:
    """Run one user prompt to completion; emits events and returns (and emits) Completed.

    ``force_tools`` constrains the first model call with a grammar to a call of one of these tools.
    """
    control = control or LoopControl()
    conversation.append(Message("user", user_text))
    run = _Run(backend, conversation, tools, config, emit, control)
    try:
        completed = run.run(force_tools)
    except LlamachatError as exc:
        emit(Error.of(exc))
        completed = Completed("error", run.last_text)
    emit(completed)
    return completed


def context_tokens(
    backend: ModelBackend, conversation: Conversation, tools: ToolExecutor, config: AgentConfig
) -> int:
    """The conversation's prompt as the next turn would send it, in tokens."""
    return _Run(backend, conversation, tools, config, ignore_event, LoopControl()).prompt_tokens()


def compact_now(
    backend: ModelBackend,
    conversation: Conversation,
    tools: ToolExecutor,
    config: AgentConfig,
    emit: EventSink,
    control: LoopControl | None = None,
) -> bool:
    """Manual compaction (the /compact command); says so when there is nothing to compact."""
    control = control or LoopControl()
    run = _Run(backend, conversation, tools, config, emit, control)
    done = compact_conversation(
        backend, conversation, config, emit, control.cancelled, run.prompt_tokens, manual=True
    )
    if not done:
        emit(
            Notice("nothing to compact yet: the conversation is shorter than what is kept verbatim")
        )
    return done
