"""The shell parse behind run_shell rules: simple commands, inner commands and risks."""

from __future__ import annotations

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tui_agent.tools.shell_command import analyse


@pytest.mark.parametrize(
    ("command", "commands"),
    [
        ("git status; rm -rf x", ["git status", "rm -rf x"]),
        ("'git' \"status\" a\\ b", ["git status 'a b'"]),
        ('r""m -f x', ["rm -f x"]),
        ("(cd src && ls) | { wc -l; }", ["cd src", "ls", "wc -l"]),
        ("if a; then b; elif c; then d; else e; fi", ["a", "b", "c", "d", "e"]),
        ("ls \\\n -la", ["ls -la"]),
        ("git status # ; rm x", ["git status"]),
    ],
)
def test_simple_commands_are_found_with_quotes_removed(command: str, commands: list[str]) -> None:
    analysis = analyse(command)
    assert [c.text for c in analysis.commands] == commands and analysis.risks == []


@pytest.mark.parametrize(
    ("command", "inner"),
    [
        ("sudo -u root rm x", "rm x"),
        ("bash -c 'ls; rm x'", "rm x"),
        ("eval 'rm x'", "rm x"),
        ("echo $(rm x)", "rm x"),
        ("find . -exec rm {} ;", "rm '{}'"),
        ("xargs -0 rm", "rm"),
    ],
)
def test_commands_inside_other_commands_are_found(command: str, inner: str) -> None:
    analysis = analyse(command)
    assert inner in [c.text for c in analysis.inner] and analysis.risks


@pytest.mark.parametrize(
    ("command", "risk"),
    [
        ("ls > out", "writes output to the file 'out'"),
        ("ls < in", "reads input from the file 'in'"),
        ("X=1 ls", "sets the variable X"),
        ("ls $HOME", "expands a variable ($HOME)"),
        ("ls `id`", "command substitution"),
        ("cat <<EOF\nx\nEOF", "here-document"),
        ("f() { ls; }", "defines a shell function"),
        ("echo {a,b}", "brace expansion"),
        ("ls *", "could expand to an option"),
        ("git -c a=b status", "git option -c"),
        ("git log --ext-diff --output=x", "git option --output"),
        ("ls )", "parser could not read"),
        ("ls\0", "NUL byte"),
        ("echo $'x'", "$'…' quoting"),
        ("((x = 1))", "arithmetic"),
    ],
)
def test_what_rules_cannot_see_is_a_risk(command: str, risk: str) -> None:
    assert any(risk in r for r in analyse(command).risks), analyse(command).risks


@pytest.mark.parametrize("command", ["ls 2>&1", "ls >/dev/null 2>&1", "ls &>/dev/null", "ls <&-"])
def test_harmless_redirections_are_not_risks(command: str) -> None:
    assert analyse(command).risks == []


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab ;&|<>()$`'\"\\{}[]*?#=\n-!~\0é")), max_size=60))
def test_the_parse_never_raises(command: str) -> None:
    analysis = analyse(command)
    assert all(c.argv for c in analysis.every_command)


def survives(command: str) -> bool:
    """Whether analysing ``command`` leaves the process alive (run in a forked child: the
    parser is C code, and a crash must fail this test, not end the test run)."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.close(2)
        analyse(command)
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    return not os.WIFSIGNALED(status)


@settings(max_examples=300, deadline=None)
@given(
    st.text(
        alphabet=st.one_of(st.characters(), st.sampled_from(list("{}[]()$`'\"\\;&|<>#*? \n"))),
        max_size=80,
    )
)
def test_no_text_crashes_the_parser(command: str) -> None:
    assert survives(command), command


def test_characters_that_crash_tree_sitter_bash_are_refused_before_parsing() -> None:
    """tree-sitter-bash 0.25.1 segfaults on "{" followed by a code point from plane 6 up."""
    for command in ("{\U00075f45", "echo {\U0010ffff", "x{\U000e0001"):
        assert survives(command)
        assert "cannot read safely" in analyse(command).risks[0]
