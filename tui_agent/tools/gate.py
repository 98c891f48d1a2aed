"""The one gate every tool call passes: permission rules, the user's answer, output caps.

``ToolGate`` is the ``ToolExecutor`` the agent loop calls. It decides allow / ask / deny, asks the
user through the loop (the worker blocks until the answer), remembers session and persistent
approvals, runs the call on the MCP hub and caps what goes back to the model.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

from tui_agent.config import save_settings
from tui_agent.events import Notice, PermissionDecision, PermissionRequest, PermissionResult
from tui_agent.tools.base import CallContext, ToolCall, ToolOutcome, ToolSpec
from tui_agent.tools.builtin import BuiltinTools, preview_change
from tui_agent.tools.mcp_hub import McpHub
from tui_agent.tools.permissions import PermissionPolicy, Policy, Verdict


class ToolGate:
    def __init__(
        self,
        hub: McpHub,
        policy: PermissionPolicy,
        max_output_chars: int,
        builtin: BuiltinTools | None = None,
        config_path: Path | None = None,
        persisted_allow: Callable[[], list[str]] | None = None,
    ) -> None:
        self.hub = hub
        self.policy = policy
        self.max_output_chars = max_output_chars
        self.builtin = builtin
        self.config_path = config_path
        self._persisted_allow = persisted_allow or (lambda: [])
        self.denials = 0
        # Headless runs have no one to ask: offer the model only the tools that can run
        # without asking (small models pick write and shell tools first, then hit denials).
        self.offer_only_unasked = False

    def specs(self) -> list[ToolSpec]:
        specs = self.hub.specs()
        if self.offer_only_unasked:
            return [s for s in specs if self.policy.may_run_unasked(s)]
        return specs

    def policy_of(self, spec: ToolSpec) -> Policy:
        """What a call of the tool gets before its arguments are known: runs, asks or denied
        (a rule on its arguments may still decide a call otherwise)."""
        return self.policy.decide(ToolCall("-", spec.name, {}), spec).policy

    def execute(self, call: ToolCall, context: CallContext) -> ToolOutcome:
        spec = next((s for s in self.specs() if s.name == call.name), None)
        verdict = self.policy.decide(call, spec)
        if verdict.policy == "deny":
            return self._denied(
                call, context, PermissionDecision(False, "rule", f"blocked by {verdict.rule}")
            )
        if verdict.policy == "ask":
            decision = self._ask(call, spec, verdict, context)
            if not decision.allowed:
                return self._denied(call, context, decision)
        else:
            context.emit(PermissionResult(call.id, call.name, True, "rule", verdict.reason))
        outcome = self.hub.call(call.name, call.arguments, context.cancelled)
        for notice in self._take_notices():
            context.emit(Notice(notice))
        return ToolOutcome(outcome.success, self.cap(outcome.output), outcome.denied)

    def _ask(
        self, call: ToolCall, spec: ToolSpec | None, verdict: Verdict, context: CallContext
    ) -> PermissionDecision:
        rule = self.policy.suggested_rule(call, spec)
        diff = preview_change(self.builtin, call.name, call.arguments) if self.builtin else ""
        request = PermissionRequest(
            uuid.uuid4().hex[:8],
            call.id,
            call.name,
            call.arguments,
            verdict.reason,
            rule,
            diff,
            verdict.details,
        )
        decision = context.ask(request)
        if decision.allowed and decision.scope in ("session", "always"):
            self.policy.add("allow", rule)
            if decision.scope == "always":
                self._persist(rule, context)
        if decision.allowed:
            context.emit(
                PermissionResult(call.id, call.name, True, decision.scope, decision.reason)
            )
        return decision

    def _persist(self, rule: str, context: CallContext) -> None:
        if self.config_path is None:
            return
        rules = [r for r in self._persisted_allow() if r != rule] + [rule]
        save_settings(self.config_path, {"permissions": {"allow": rules}})
        context.emit(Notice(f"saved {rule} to [permissions] allow in {self.config_path}"))

    def _denied(
        self, call: ToolCall, context: CallContext, decision: PermissionDecision
    ) -> ToolOutcome:
        self.denials += 1
        context.emit(PermissionResult(call.id, call.name, False, decision.scope, decision.reason))
        why = f" Reason: {decision.reason.rstrip('.')}." if decision.reason else ""
        return ToolOutcome(
            False,
            f"The user did not allow this call to {call.name}; it was not run.{why} "
            "Do not try it again; continue without it or ask the user.",
            denied=True,
        )

    def cap(self, output: str) -> str:
        if len(output) <= self.max_output_chars:
            return output
        head = output[: self.max_output_chars]
        return f"{head}\n…[output cut: {self.max_output_chars:,} of {len(output):,} characters shown; ask for a narrower range]"

    def _take_notices(self) -> list[str]:
        notices, self.hub.notices = self.hub.notices, []
        return notices
