"""Permission rules: which tool calls run, which ask first, which never run.

A rule is ``TOOL`` or ``TOOL(PATTERN)``. TOOL is a glob over tool names (``time__*``). PATTERN is
matched against the call's main argument: the path for file tools (relative to the workspace,
``*`` stays within a directory, ``**`` crosses them), the command for ``run_shell`` (``*`` matches
anything), the compact JSON of the arguments for other tools. Precedence: deny > ask > allow >
the defaults (read-only built-ins run; trusted servers' read-only tools run; everything else asks).
"""

from __future__ import annotations

import fnmatch
import json
import re
from dataclasses import dataclass, field
from typing import Literal

from tui_agent.tools.base import ToolCall, ToolSpec
from tui_agent.tools.builtin import PATH_TOOLS, PRIMARY_ARGUMENT, READ_ONLY_TOOLS
from tui_agent.tools.workspace import OutsideWorkspaceError, Workspace

Policy = Literal["allow", "ask", "deny"]
_RULE = re.compile(r"^\s*(?P<tool>[^()\s]+)\s*(?:\((?P<pattern>.*)\))?\s*$", re.S)


class RuleError(ValueError):
    pass


@dataclass(frozen=True)
class Rule:
    tool: str
    pattern: str | None = None

    @classmethod
    def parse(cls, text: str) -> Rule:
        match = _RULE.match(text)
        if not match:
            raise RuleError(
                f"invalid permission rule {text!r}; write TOOL or TOOL(PATTERN), e.g. run_shell(git status*)"
            )
        return cls(match["tool"], match["pattern"])

    def __str__(self) -> str:
        return self.tool if self.pattern is None else f"{self.tool}({self.pattern})"

    def matches(self, call: ToolCall, subject: str | None, is_path: bool) -> bool:
        if not fnmatch.fnmatchcase(call.name, self.tool):
            return False
        if self.pattern is None:
            return True
        if subject is None:
            return False
        return (
            path_glob_match(self.pattern, subject)
            if is_path
            else fnmatch.fnmatchcase(subject, self.pattern)
        )


def path_glob_match(pattern: str, path: str) -> bool:
    """Glob for paths: ``*`` and ``?`` stay within one directory, ``**`` spans any depth."""
    regex = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            regex, i = regex + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            regex, i = regex + ".*", i + 2
        elif pattern[i] == "*":
            regex, i = regex + "[^/]*", i + 1
        elif pattern[i] == "[" and pattern[i + 2 : i + 3] == "]":  # "[*]" is an escaped "*"
            regex, i = regex + re.escape(pattern[i + 1]), i + 3
        elif pattern[i] == "?":
            regex, i = regex + "[^/]", i + 1
        else:
            regex, i = regex + re.escape(pattern[i]), i + 1
    return re.fullmatch(regex, path) is not None


@dataclass(frozen=True)
class Verdict:
    policy: Policy
    reason: str
    rule: str = ""  # the rule that decided, when one did


@dataclass
class PermissionPolicy:
    workspace: Workspace
    allow: list[Rule] = field(default_factory=list)
    ask: list[Rule] = field(default_factory=list)
    deny: list[Rule] = field(default_factory=list)
    trusted_servers: set[str] = field(default_factory=lambda: {"builtin"})

    @classmethod
    def from_lists(
        cls,
        workspace: Workspace,
        allow: list[str],
        ask: list[str],
        deny: list[str],
        trusted_servers: set[str] | None = None,
    ) -> PermissionPolicy:
        return cls(
            workspace,
            [Rule.parse(r) for r in allow],
            [Rule.parse(r) for r in ask],
            [Rule.parse(r) for r in deny],
            trusted_servers or {"builtin"},
        )

    def subject(self, call: ToolCall) -> tuple[str | None, bool]:
        """What a rule's pattern is matched against, and whether it is a path."""
        key = PRIMARY_ARGUMENT.get(call.name)
        if key is None:
            return json.dumps(call.arguments, sort_keys=True, separators=(",", ":")), False
        value = call.arguments.get(key, "." if call.name == "list_dir" else None)
        if value is None:
            return None, False
        if call.name in PATH_TOOLS:
            try:
                return self.workspace.relative(self.workspace.resolve(str(value))), True
            except OutsideWorkspaceError:
                # An absolute path never matches a workspace-relative pattern.
                return str((self.workspace.root / str(value)).resolve()), True
        return str(value), False

    def decide(self, call: ToolCall, spec: ToolSpec | None) -> Verdict:
        subject, is_path = self.subject(call)
        for policy, rules in (("deny", self.deny), ("ask", self.ask), ("allow", self.allow)):
            for rule in rules:
                if rule.matches(call, subject, is_path):
                    return Verdict(policy, f"the rule {rule} in [permissions] {policy}", str(rule))  # type: ignore[arg-type]
        return self.default(call, spec)

    def default(self, call: ToolCall, spec: ToolSpec | None) -> Verdict:
        if spec is not None and spec.server == "builtin":
            if call.name in READ_ONLY_TOOLS:
                return Verdict("allow", "read-only built-in tool")
            return Verdict("ask", _DANGER.get(call.name, "it changes your system"))
        if spec is None:
            return Verdict("ask", "unknown tool")
        if spec.server not in self.trusted_servers:
            return Verdict(
                "ask", f"it comes from the MCP server {spec.server!r}, which is not trusted"
            )
        if spec.read_only and not spec.destructive:
            return Verdict("allow", "read-only tool of a trusted server")
        return Verdict(
            "ask",
            "the server does not mark it read-only"
            if not spec.read_only
            else "the server marks it destructive",
        )

    def suggested_rule(self, call: ToolCall, spec: ToolSpec | None) -> str:
        """The narrow rule saved by "allow for this session" or "always allow"."""
        if call.name in PRIMARY_ARGUMENT:
            subject, _ = self.subject(call)
            if subject is not None:
                return str(Rule(call.name, _escape_glob(subject)))
        return call.name

    def add(self, policy: Policy, rule: str) -> None:
        getattr(self, policy).append(Rule.parse(rule))


_DANGER = {
    "write_file": "it writes a file",
    "edit_file": "it changes a file",
    "run_shell": "it runs a shell command",
}


def _escape_glob(text: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", text)
