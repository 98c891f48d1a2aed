"""Permission rules: parsing, matching, precedence, defaults."""

from __future__ import annotations

import fnmatch
import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tui_agent.tools.base import ToolCall, ToolSpec
from tui_agent.tools.permissions import PermissionPolicy, Rule, RuleError, path_glob_match
from tui_agent.tools.workspace import Workspace

BUILTIN_WRITE = ToolSpec("write_file", "", server="builtin")
BUILTIN_READ = ToolSpec("read_file", "", read_only=True, destructive=False, server="builtin")
SHELL = ToolSpec("run_shell", "", server="builtin")
TIME = ToolSpec("time__get_current_time", "", read_only=True, destructive=False, server="time")
TIME_DESTRUCTIVE = ToolSpec("time__reset", "", read_only=True, destructive=True, server="time")
UNANNOTATED = ToolSpec("git__git_commit", "", server="git")


def policy(tmp_path: Path, allow=(), ask=(), deny=(), trusted=("builtin",)) -> PermissionPolicy:  # type: ignore[no-untyped-def]
    return PermissionPolicy.from_lists(
        Workspace.at(tmp_path), list(allow), list(ask), list(deny), set(trusted)
    )


def shell(command: str) -> ToolCall:
    return ToolCall("c", "run_shell", {"command": command})


def write(path: str) -> ToolCall:
    return ToolCall("c", "write_file", {"path": path, "content": "x"})


@pytest.mark.parametrize(
    ("text", "tool", "pattern"),
    [
        ("run_shell", "run_shell", None),
        ("run_shell(git status*)", "run_shell", "git status*"),
        ("time__*", "time__*", None),
        (" write_file( src/** ) ", "write_file", " src/** "),
    ],
)
def test_parse(text: str, tool: str, pattern: str | None) -> None:
    assert Rule.parse(text) == Rule(tool, pattern)


@pytest.mark.parametrize("bad", ["", "run shell", "a(b", "(x)"])
def test_parse_errors(bad: str) -> None:
    with pytest.raises(RuleError, match="TOOL or TOOL"):
        Rule.parse(bad)


@pytest.mark.parametrize(
    ("pattern", "path", "expected"),
    [
        ("src/**", "src/a.py", True),
        ("src/**", "src/x/y/a.py", True),
        ("src/*", "src/x/a.py", False),
        ("src/*.py", "src/a.py", True),
        ("**/*.md", "README.md", True),
        ("**/*.md", "docs/a/b.md", True),
        ("*.md", "docs/a.md", False),
        ("a?.txt", "ab.txt", True),
        ("a[*].txt", "a*.txt", True),
        ("a[*].txt", "ab.txt", False),
    ],
)
def test_path_glob(pattern: str, path: str, expected: bool) -> None:
    assert path_glob_match(pattern, path) is expected


@pytest.mark.parametrize(
    ("rules", "call", "spec", "expected"),
    [
        ({}, shell("ls"), SHELL, "ask"),
        ({}, write("a.txt"), BUILTIN_WRITE, "ask"),
        ({}, ToolCall("c", "read_file", {"path": "a"}), BUILTIN_READ, "allow"),
        ({"allow": ["run_shell(git status*)"]}, shell("git status --short"), SHELL, "allow"),
        ({"allow": ["run_shell(git status*)"]}, shell("git push"), SHELL, "ask"),
        ({"allow": ["write_file(src/**)"]}, write("src/pkg/a.py"), BUILTIN_WRITE, "allow"),
        ({"allow": ["write_file(src/**)"]}, write("./src/../src/a.py"), BUILTIN_WRITE, "allow"),
        ({"allow": ["write_file(src/**)"]}, write("other/a.py"), BUILTIN_WRITE, "ask"),
        ({"allow": ["write_file(src/**)"]}, write("src/../../etc/x"), BUILTIN_WRITE, "ask"),
        ({"allow": ["run_shell"], "deny": ["run_shell(rm *)"]}, shell("rm -rf /"), SHELL, "deny"),
        ({"allow": ["run_shell"]}, shell("make > build.log 2>&1 && cat $HOME/x"), SHELL, "allow"),
        (
            {"allow": ["run_shell"], "ask": ["run_shell(git push*)"]},
            shell("make && git push"),
            SHELL,
            "ask",
        ),
        (
            {"allow": ["run_shell"], "ask": ["run_shell(git push*)"]},
            shell("git push"),
            SHELL,
            "ask",
        ),
        ({"ask": ["read_file"]}, ToolCall("c", "read_file", {"path": "a"}), BUILTIN_READ, "ask"),
        (
            {"deny": ["read_file(secrets/**)"]},
            ToolCall("c", "read_file", {"path": "secrets/k"}),
            BUILTIN_READ,
            "deny",
        ),
        ({"allow": ["time__*"]}, ToolCall("c", "time__get_current_time", {}), TIME, "allow"),
    ],
)
def test_decisions(
    tmp_path: Path, rules: dict[str, list[str]], call: ToolCall, spec: ToolSpec, expected: str
) -> None:
    assert policy(tmp_path, **rules).decide(call, spec).policy == expected


def test_mcp_defaults_depend_on_trust_and_annotations(tmp_path: Path) -> None:
    untrusted = policy(tmp_path)
    call = ToolCall("c", "time__get_current_time", {})
    verdict = untrusted.decide(call, TIME)
    assert verdict.policy == "ask" and "not trusted" in verdict.reason
    trusted = policy(tmp_path, trusted=("builtin", "time", "git"))
    assert trusted.decide(call, TIME).policy == "allow"
    assert trusted.decide(ToolCall("c", "time__reset", {}), TIME_DESTRUCTIVE).policy == "ask"
    assert trusted.decide(ToolCall("c", "git__git_commit", {}), UNANNOTATED).policy == "ask"


def test_rules_for_mcp_tools_match_their_json_arguments(tmp_path: Path) -> None:
    rules = policy(tmp_path, allow=['time__get_current_time(*"timezone":"UTC"*)'])
    assert (
        rules.decide(ToolCall("c", "time__get_current_time", {"timezone": "UTC"}), TIME).policy
        == "allow"
    )
    assert (
        rules.decide(ToolCall("c", "time__get_current_time", {"timezone": "CET"}), TIME).policy
        == "ask"
    )


def test_suggested_rules_are_narrow_and_match_their_call(tmp_path: Path) -> None:
    rules = policy(tmp_path)
    for call, spec, expected in [
        (shell("git status"), SHELL, "run_shell(git status)"),
        (write("src/a.py"), BUILTIN_WRITE, "write_file(src/a.py)"),
        (shell("ls *.py"), SHELL, "run_shell(ls [*].py)"),
        (
            ToolCall("c", "time__get_current_time", {"timezone": "UTC"}),
            TIME,
            "time__get_current_time",
        ),
    ]:
        suggestion = rules.suggested_rule(call, spec)
        assert suggestion == expected
        approved = policy(tmp_path, allow=[suggestion])
        assert approved.decide(call, spec).policy == "allow"
    assert (
        policy(tmp_path, allow=["run_shell(ls [*].py)"]).decide(shell("ls a.py"), SHELL).policy
        == "ask"
    )


names = st.sampled_from(["time__x", "time__y", "git__y"])
patterns = st.one_of(st.none(), st.sampled_from(["*", '*"a"*', "*UTC*", "{*", "x"]))
rules_strategy = st.lists(st.builds(lambda n, p: str(Rule(n, p)), names, patterns), max_size=4)


@given(rules_strategy, rules_strategy, rules_strategy, names, st.sampled_from(["a", "UTC", "x"]))
def test_deny_beats_ask_beats_allow(
    allow: list[str], ask: list[str], deny: list[str], name: str, argument: str
) -> None:
    root = Path("/tmp/llamachat-hypothesis-ws")
    p = PermissionPolicy.from_lists(Workspace.at(root), allow, ask, deny, {"builtin"})
    call = ToolCall("c", name, {"tz": argument})
    subject = json.dumps(call.arguments, sort_keys=True, separators=(",", ":"))
    verdict = p.decide(call, None).policy

    def hit(rule: Rule) -> bool:
        return rule.names(name) and (
            rule.pattern is None or fnmatch.fnmatchcase(subject, rule.pattern)
        )

    matched = {
        kind: any(hit(Rule.parse(r)) for r in rules)
        for kind, rules in (("deny", deny), ("ask", ask), ("allow", allow))
    }
    if matched["deny"]:
        assert verdict == "deny"
    elif matched["ask"]:
        assert verdict == "ask"
    elif matched["allow"]:
        assert verdict == "allow"
    else:
        assert verdict == "ask"  # no spec: unknown tools ask
