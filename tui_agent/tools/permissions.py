"""Permission rules: which tool calls run, which ask first, which never run.

A rule is ``TOOL`` or ``TOOL(PATTERN)``. TOOL is a glob over tool names (``time__*``). PATTERN is
matched against what the call touches:

- file tools: the path, relative to the workspace (``*`` stays within a directory, ``**`` crosses
  them), checked both as written and with symlinks resolved. A deny or ask rule on a path guards
  it from every file tool alike: a rule naming a read tool (``read_file``, ``grep``, ``glob``,
  ``list_dir``) keeps the path away from all six, one naming a write tool guards writes and edits.
  Searches and listings skip guarded paths and say how many they skipped.
- ``run_shell``: each simple command the shell would run, as its argv (see shell_command.py). A
  command runs without asking only when every simple command in it matches an allow rule and
  nothing in it is a risk; a deny rule matching any one of them denies the whole call. Only a
  rule that names the whole command exactly allows a risky one.
- other tools: the compact JSON of the arguments.

Precedence: deny > ask > allow > the defaults (read-only built-ins run; trusted servers'
read-only tools run; everything else asks).
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from tui_agent.tools.base import ToolCall, ToolSpec
from tui_agent.tools.builtin import (
    FILE_TOOLS,
    PRIMARY_ARGUMENT,
    READ_ONLY_TOOLS,
    WRITE_TOOLS,
)
from tui_agent.tools.shell_command import ShellAnalysis, SimpleCommand, analyse
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

    def names(self, tool: str) -> bool:
        return fnmatch.fnmatchcase(tool, self.tool)

    def guards(self, tool: str) -> bool:
        """Whether this rule, as a deny or ask rule on a path, applies to file tool ``tool``."""
        if self.pattern is None or tool not in FILE_TOOLS:
            return False
        named = [t for t in FILE_TOOLS if self.names(t)]
        if any(t in READ_ONLY_TOOLS for t in named):
            return True
        return tool in WRITE_TOOLS and any(t in WRITE_TOOLS for t in named)

    def literal(self) -> str | None:
        """The exact text the pattern names, when it has no wildcards (``[*]`` is a literal *)."""
        if self.pattern is None:
            return None
        text, pattern, i = "", self.pattern, 0
        while i < len(pattern):
            if pattern[i] == "[" and pattern[i + 2 : i + 3] == "]" and pattern[i + 1] in "*?[":
                text, i = text + pattern[i + 1], i + 3
            elif pattern[i] in "*?[":
                return None
            else:
                text, i = text + pattern[i], i + 1
        return text


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
    return re.fullmatch(regex, path, re.S) is not None


@dataclass(frozen=True)
class Verdict:
    policy: Policy
    reason: str
    rule: str = ""  # the rule that decided, when one did
    # What the shell gate found, a line per simple command or risk, for the permission prompt.
    details: tuple[str, ...] = ()


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

    def decide(self, call: ToolCall, spec: ToolSpec | None) -> Verdict:
        if call.name == "run_shell" and (spec is None or spec.server == "builtin"):
            return self._decide_shell(call, spec)
        if call.name in FILE_TOOLS:
            return self._decide_path(call, spec)
        subject = json.dumps(call.arguments, sort_keys=True, separators=(",", ":"))
        for policy, rules in self._ordered():
            for rule in rules:
                if rule.names(call.name) and (
                    rule.pattern is None or fnmatch.fnmatchcase(subject, rule.pattern)
                ):
                    return _by_rule(policy, rule)
        return self.default(call, spec)

    def _ordered(self) -> tuple[tuple[Policy, list[Rule]], ...]:
        return (("deny", self.deny), ("ask", self.ask), ("allow", self.allow))

    # --- file tools -------------------------------------------------------------------------

    def path_subjects(self, value: str) -> list[str]:
        """The path as written and as resolved (symlinks followed), workspace-relative where
        it is inside; a rule that matches either applies."""
        root = self.workspace.root
        written = Path(os.path.normpath(root / Path(value).expanduser()))
        try:
            resolved = self.workspace.relative(self.workspace.resolve(value))
        except OutsideWorkspaceError:
            # An absolute path never matches a workspace-relative pattern.
            resolved = _resolved(written)
        except (OSError, RuntimeError):  # a symlink loop, an unreadable link
            resolved = str(written)
        literal = str(written.relative_to(root)) if written.is_relative_to(root) else str(written)
        literal = "." if literal in ("", ".") else literal
        return [resolved] if literal == resolved else [resolved, literal]

    def _decide_path(self, call: ToolCall, spec: ToolSpec | None) -> Verdict:
        key = PRIMARY_ARGUMENT[call.name]
        value = call.arguments.get(key, None if call.name in WRITE_TOOLS else ".")
        if value is None:
            return self.default(call, spec)
        subjects = self.path_subjects(str(value))
        for policy, rules in self._ordered()[:2]:
            for rule in rules:
                if rule.pattern is None and rule.names(call.name):
                    return _by_rule(policy, rule)
                if rule.guards(call.name) and any(
                    path_glob_match(rule.pattern or "", s) for s in subjects
                ):
                    return _by_rule(policy, rule)
        for rule in self.allow:
            # An allow rule must hold for where the call really lands (the resolved path).
            if rule.names(call.name) and (
                rule.pattern is None or path_glob_match(rule.pattern, subjects[0])
            ):
                return _by_rule("allow", rule)
        return self.default(call, spec)

    def hides(self, path: Path) -> bool:
        """Whether a search or listing must skip ``path`` (absolute): a deny or ask rule on a
        path guards it from reads. Checked on the path as found and with symlinks resolved."""
        guards = [r for r in (*self.deny, *self.ask) if r.guards("read_file")]
        if not guards:
            return False
        subjects = self.path_subjects(str(path))
        return any(path_glob_match(r.pattern or "", s) for r in guards for s in subjects)

    # --- run_shell --------------------------------------------------------------------------

    def _decide_shell(self, call: ToolCall, spec: ToolSpec | None) -> Verdict:
        command = str(call.arguments.get("command", ""))
        analysis = analyse(command)
        for policy, rules in self._ordered()[:2]:
            for rule in rules:
                hit = self._shell_hit(rule, command, analysis)
                if hit is not None:
                    verdict = _by_rule(policy, rule)
                    return Verdict(
                        verdict.policy, verdict.reason, verdict.rule, (f"{policy}: {hit}",)
                    )
        # A rule naming this exact command, or run_shell with no pattern (every command: the
        # user said so), allows what would otherwise always ask.
        explicit = next(
            (r for r in self.allow if r.names("run_shell") and r.pattern is None), None
        ) or next((r for r in self.allow if self._names_exactly(r, command)), None)
        if explicit is not None:
            return _by_rule("allow", explicit)
        risks = analysis.risks + self._guarded_paths(analysis.every_command)
        covered: list[tuple[SimpleCommand, Rule | None]] = [
            (c, next((r for r in self.allow if _allows(r, c)), None)) for c in analysis.commands
        ]
        details = tuple(
            f"{'allowed by ' + str(rule) if rule else 'no allow rule'}: {c.text}"
            for c, rule in covered
        ) + tuple(f"always asks: {risk}" for risk in risks)
        if risks:
            return Verdict("ask", risks[0], details=details)
        if covered and all(rule is not None for _, rule in covered):
            names = sorted({str(rule) for _, rule in covered})
            return Verdict(
                "allow", f"every command matches [permissions] allow ({', '.join(names)})"
            )
        missing = [c.text for c, rule in covered if rule is None]
        if not missing:
            return Verdict("ask", "it runs no command the rules can check", details=details)
        reason = (
            _DANGER["run_shell"]
            if len(missing) == len(covered)
            else f"no allow rule covers {', '.join(missing)}"
        )
        return Verdict("ask", reason, details=details)

    def _shell_hit(self, rule: Rule, command: str, analysis: ShellAnalysis) -> str | None:
        """The command a deny or ask rule catches: the raw text or any simple command in it,
        inner ones (``sudo rm``, ``sh -c 'rm'``) and ``/bin/rm`` as ``rm`` included."""
        if not rule.names("run_shell"):
            return None
        if rule.pattern is None or fnmatch.fnmatchcase(command, rule.pattern):
            return command
        for simple in analysis.every_command:
            base = (os.path.basename(simple.argv[0]), *simple.argv[1:])
            for text in (simple.text, " ".join(simple.argv), SimpleCommand(base).text):
                if fnmatch.fnmatchcase(text, rule.pattern):
                    return simple.text
        return None

    @staticmethod
    def _names_exactly(rule: Rule, command: str) -> bool:
        return rule.names("run_shell") and rule.literal() == command.strip()

    def _guarded_paths(self, commands: list[SimpleCommand]) -> list[str]:
        """Arguments that name a path a deny or ask rule guards: cat .env asks."""
        found = []
        for simple in commands:
            for arg in simple.argv[1:]:
                value = arg.split("=", 1)[1] if arg.startswith("-") and "=" in arg else arg
                if value and not value.startswith("-") and self.hides(Path(value)):
                    found.append(f"it names {value}, which a [permissions] rule guards")
        return found

    def may_run_unasked(self, spec: ToolSpec) -> bool:
        """Whether some call of this tool runs without asking: its default allows it or an
        allow rule names it, and no pattern-less deny or ask rule takes it whole."""
        if any(r.pattern is None and r.names(spec.name) for r in (*self.deny, *self.ask)):
            return False
        if any(r.names(spec.name) for r in self.allow):
            return True
        return self.default(ToolCall("-", spec.name, {}), spec).policy == "allow"

    # --- defaults and suggestions -----------------------------------------------------------

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
        """The narrow rule saved by "allow for this session" or "always allow": the exact
        command for run_shell, the resolved path for file tools."""
        key = PRIMARY_ARGUMENT.get(call.name)
        value = call.arguments.get(key) if key else None
        if value is None:
            return call.name
        if call.name == "run_shell":
            return str(Rule(call.name, _escape_glob(str(value).strip())))
        return str(Rule(call.name, _escape_glob(self.path_subjects(str(value))[0])))

    def add(self, policy: Policy, rule: str) -> None:
        getattr(self, policy).append(Rule.parse(rule))


def _resolved(path: Path) -> str:
    try:
        return str(path.resolve())
    except (OSError, RuntimeError, ValueError):
        return str(path)


def _allows(rule: Rule, command: SimpleCommand) -> bool:
    """An allow rule matches the argv as written (``/tmp/x/git`` is not ``git``)."""
    return rule.names("run_shell") and (
        rule.pattern is None or fnmatch.fnmatchcase(command.text, rule.pattern)
    )


def _by_rule(policy: Policy, rule: Rule) -> Verdict:
    return Verdict(policy, f"the rule {rule} in [permissions] {policy}", str(rule))


_DANGER = {
    "write_file": "it writes a file",
    "edit_file": "it changes a file",
    "run_shell": "it runs a shell command",
}


def _escape_glob(text: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", text)
