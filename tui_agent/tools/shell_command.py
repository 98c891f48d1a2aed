"""What a shell command really runs: its simple commands as argv lists, and what cannot be checked.

``run_shell`` rules are matched against each simple command the shell would run, never against
the raw text: ``git status; rm -rf ~`` is two commands, and a rule for the first says nothing
about the second. The command is parsed with tree-sitter's bash grammar (``run_shell`` runs
bash, so parser and shell agree). Anything whose effect the rules cannot see is a *risk*: a
redirection to a file, a substitution, a variable expansion, an assignment prefix, a command that
runs other commands (``eval``, ``sh -c``, ``xargs``, ``find -exec``, ``git -c``), a here-document,
a function definition, a parse error, or any construct this module does not know. A risk always
asks unless a rule names the whole command exactly. The walk is a whitelist: unknown node kinds
are risks, never skipped.
"""

from __future__ import annotations

import os
import re
import shlex
from dataclasses import dataclass, field
from functools import cache
from typing import Any

# Longer commands are not parsed; they ask (no rule should wave through a 100 KB script).
MAX_COMMAND_CHARS = 20_000
# How deep `sh -c '…'` / `eval` / substitutions may nest before the rest simply asks.
_MAX_DEPTH = 4

_UNPARSABLE = re.compile("[\U00030000-\U0010ffff]")
# How many tails of a wrapper's arguments (`sudo -u root rm x`) are checked as the command.
_MAX_TAILS = 64
_SHELLS = {"sh", "bash", "dash", "zsh", "ksh", "mksh", "ash", "busybox", "fish", "csh", "tcsh"}
_EVALUATORS = {"eval", "source", "."}
# Commands that run the command named in their arguments.
_WRAPPERS = {
    "builtin",
    "chroot",
    "chrt",
    "command",
    "coproc",
    "doas",
    "env",
    "exec",
    "flock",
    "ionice",
    "nice",
    "nohup",
    "parallel",
    "pkexec",
    "setsid",
    "stdbuf",
    "strace",
    "su",
    "sudo",
    "taskset",
    "time",
    "timeout",
    "unbuffer",
    "watch",
    "xargs",
}
_FIND_RUNNERS = ("-exec", "-execdir", "-ok", "-okdir")
_FIND_WRITERS = ("-delete", "-fprint", "-fprint0", "-fprintf", "-fls")
# git options that run another program, write a file, or point git at a config it would trust.
_GIT_GLOBAL_RISKS = ("-c", "-C", "--config-env", "--exec-path", "--git-dir", "--work-tree")
_GIT_LONG_RISKS = (
    "--upload-pack",
    "--receive-pack",
    "--exec",
    "--extcmd",
    "--open-files-in-pager",
    "--output",
    "--template",
    "--config",
    "--tool",
)
_GIT_SHORT_RISKS = {"clone": ("-u", "-c"), "rebase": ("-x",), "difftool": ("-x",), "grep": ("-O",)}
_GIT_SUBCOMMAND_RISKS = {"filter-branch", "bisect", "submodule", "daemon", "instaweb", "-p"}

_DEV_NULL = "/dev/null"
_NUMERIC = re.compile(r"^(?:\d+|-)$")


@dataclass(frozen=True)
class SimpleCommand:
    argv: tuple[str, ...]

    @property
    def text(self) -> str:
        """The argv as one canonical line, which rule patterns are matched against."""
        return shlex.join(self.argv)


@dataclass
class ShellAnalysis:
    """The simple commands a command line runs, and the reasons it cannot be checked by rules."""

    commands: list[SimpleCommand] = field(default_factory=list)
    risks: list[str] = field(default_factory=list)
    # Commands that run only as the argument of another (sudo X, xargs X, sh -c 'X'): deny and
    # ask rules see them; they never count as allowed on their own.
    inner: list[SimpleCommand] = field(default_factory=list)

    def risk(self, text: str) -> None:
        if text not in self.risks:
            self.risks.append(text)

    @property
    def every_command(self) -> list[SimpleCommand]:
        return self.commands + self.inner


def analyse(command: str) -> ShellAnalysis:
    """Parse ``command`` as bash and collect its simple commands and risks."""
    analysis = ShellAnalysis()
    _analyse_into(command, analysis, depth=0, inner=False)
    return analysis


def _analyse_into(command: str, analysis: ShellAnalysis, depth: int, inner: bool) -> None:
    if "\0" in command:
        analysis.risk("it contains a NUL byte")
        return
    if len(command) > MAX_COMMAND_CHARS:
        analysis.risk(f"it is longer than {MAX_COMMAND_CHARS:,} characters, too long to check")
        return
    if depth > _MAX_DEPTH:
        analysis.risk("it nests shells too deeply to check")
        return
    if _UNPARSABLE.search(command):
        # tree-sitter-bash 0.25 crashes the process (SIGSEGV) on some of these after "{";
        # planes 3-16 hold no script a shell command needs (unassigned, tags, private use).
        analysis.risk("it contains characters the shell parser cannot read safely")
        return
    tree = _parser().parse(command.encode("utf-8", errors="surrogatepass"))
    root = tree.root_node
    if root.has_error:
        analysis.risk("the shell parser could not read all of it")
    try:
        _Walker(analysis, depth, inner).statements(root)
    except RecursionError:
        analysis.risk("it nests too deeply to check")


@cache
def _parser() -> Any:
    import tree_sitter_bash
    from tree_sitter import Language, Parser

    return Parser(Language(tree_sitter_bash.language()))


def _text(node: Any) -> str:
    return str(node.text.decode("utf-8", errors="replace"))


class _Walker:
    """Walks the syntax tree, whitelisting the kinds of node whose effect is known."""

    def __init__(self, analysis: ShellAnalysis, depth: int, inner: bool) -> None:
        self.analysis = analysis
        self.depth = depth
        self.inner = inner

    def statements(self, node: Any) -> None:
        for child in node.named_children:
            self.statement(child)

    def statement(self, node: Any) -> None:
        kind = node.type
        if kind == "comment":
            return
        if kind == "command":
            self.command(node)
        elif kind in ("list", "pipeline", "subshell", "do_group", "else_clause", "program"):
            self.statements(node)
        elif kind == "compound_statement":
            if node.child_count and node.children[0].type == "{":
                self.statements(node)
            else:
                self.analysis.risk("it uses shell arithmetic, which can assign variables")
        elif kind in ("negated_command", "if_statement", "elif_clause", "while_statement"):
            self.statements(node)
        elif kind == "for_statement":
            self.for_loop(node)
        elif kind == "case_statement":
            self.case(node)
        elif kind == "redirected_statement":
            self.redirected(node)
        elif kind == "test_command":
            self.test(node)
        elif kind == "variable_name":
            return  # the loop variable of `for x in …`, or `while read x`'s name
        else:
            self.analysis.risk(_describe(node))

    def for_loop(self, node: Any) -> None:
        for child in node.named_children:
            if child.type == "variable_name":
                continue
            if node.field_name_for_named_child(_index(node, child)) == "value":
                self.word(child)
            else:
                self.statement(child)

    def case(self, node: Any) -> None:
        for child in node.named_children:
            if child.type == "case_item":
                for part in child.named_children:
                    field_name = child.field_name_for_named_child(_index(child, part))
                    if field_name == "value":
                        self.word(part)
                    else:
                        self.statement(part)
            else:
                self.word(child)

    def test(self, node: Any) -> None:
        """``[ … ]`` and ``[[ … ]]`` only read; anything that expands inside them is a risk."""
        stack = list(node.named_children)
        while stack:
            child = stack.pop()
            if child.type in _EXPANSIONS:
                self.expansion(child)
            else:
                stack.extend(child.named_children)

    def redirected(self, node: Any) -> None:
        for child in node.named_children:
            if child.type.endswith("_redirect"):
                self.redirect(child)
            else:
                self.statement(child)

    def redirect(self, node: Any) -> None:
        kind = node.type
        if kind == "heredoc_redirect":
            self.analysis.risk("it feeds a here-document to a command")
            return
        if kind == "herestring_redirect":
            self.analysis.risk("it feeds a here-string to a command")
            return
        if kind != "file_redirect":
            self.analysis.risk(_describe(node))
            return
        operator = next((c.type for c in node.children if not c.is_named), "")
        destination = node.child_by_field_name("destination")
        if destination is None and operator in (">&-", "<&-"):
            return  # closes a file descriptor
        if destination is None:
            self.analysis.risk("it has a redirection the rules cannot check")
            return
        if destination.type in _EXPANSIONS or destination.type == "process_substitution":
            self.expansion(destination)
            return
        target = self.word(destination)
        if operator in (">&", "<&") and _NUMERIC.match(target):
            return  # 2>&1, >&2, <&-: file descriptors, not files
        if target == _DEV_NULL:
            return
        if operator.startswith("<"):
            self.analysis.risk(f"it reads input from the file {target!r}")
        else:
            self.analysis.risk(f"it writes output to the file {target!r}")

    def command(self, node: Any) -> None:
        argv: list[str] = []
        for child in node.named_children:
            kind = child.type
            if kind == "command_name":
                argv.append(self.word(child.named_children[0]) if child.named_children else "")
            elif kind == "variable_assignment":
                name = child.child_by_field_name("name")
                shown = _text(name) if name is not None else _text(child)
                self.analysis.risk(f"it sets the variable {shown} for the command")
                value = child.child_by_field_name("value")
                if value is not None:
                    self.word(value)
            elif kind.endswith("_redirect"):
                self.redirect(child)
            elif kind == "comment":
                continue
            else:
                argv.append(self.word(child))
        if argv:
            self.simple(tuple(argv))

    def simple(self, argv: tuple[str, ...]) -> None:
        command = SimpleCommand(argv)
        (self.analysis.inner if self.inner else self.analysis.commands).append(command)
        self.nested(argv)

    def nested(self, argv: tuple[str, ...]) -> None:
        """Commands that run other commands: the inner ones are found and the outer one asks."""
        name = os.path.basename(argv[0])
        args = argv[1:]
        if name in _EVALUATORS:
            self.analysis.risk(f"{name} runs its arguments as shell code")
            if name == "eval":
                _analyse_into(" ".join(args), self.analysis, self.depth + 1, inner=True)
        elif name in _SHELLS:
            self.shell(name, args)
        elif name in _WRAPPERS:
            self.analysis.risk(f"{name} runs another command")
            self.suffixes(args)
        elif name == "find":
            self.find(args)
        elif name == "git":
            self.git(args)

    def shell(self, name: str, args: tuple[str, ...]) -> None:
        self.analysis.risk(f"it starts another shell ({name})")
        for i, arg in enumerate(args):
            if (
                arg.startswith("-")
                and not arg.startswith("--")
                and "c" in arg
                and i + 1 < len(args)
            ):
                _analyse_into(args[i + 1], self.analysis, self.depth + 1, inner=True)
                return

    def suffixes(self, args: tuple[str, ...]) -> None:
        """``sudo -u root rm x``: every tail that starts with a plain word may be the command
        (which word is the command depends on each wrapper's options; all of them are checked)."""
        tails = [i for i, arg in enumerate(args) if not arg.startswith("-") and "=" not in arg]
        if len(tails) > _MAX_TAILS:
            self.analysis.risk("it has too many arguments to find the command it runs")
        walker = _Walker(self.analysis, self.depth + 1, inner=True)
        for i in tails[:_MAX_TAILS]:
            self.analysis.inner.append(SimpleCommand(args[i:]))
            if os.path.basename(args[i]) not in _WRAPPERS:  # a wrapper's tails are these tails
                walker.nested(args[i:])

    def find(self, args: tuple[str, ...]) -> None:
        for i, arg in enumerate(args):
            if arg in _FIND_RUNNERS:
                self.analysis.risk(f"find {arg} runs another command")
                self.suffixes(args[i + 1 :])
            elif arg in _FIND_WRITERS:
                self.analysis.risk(f"find {arg} deletes or writes files")

    def git(self, args: tuple[str, ...]) -> None:
        subcommand = ""
        for arg in args:
            if not subcommand and not arg.startswith("-"):
                subcommand = arg
                if subcommand in _GIT_SUBCOMMAND_RISKS:
                    self.analysis.risk(f"git {subcommand} can run other programs")
                continue
            option = arg.split("=", 1)[0]
            if not subcommand and any(
                option == o or (o == "-c" and option.startswith("-c")) for o in _GIT_GLOBAL_RISKS
            ):
                self.analysis.risk(f"the git option {option} can run other programs")
            elif option.startswith("--") and len(option) > 3:
                # git accepts unambiguous abbreviations of long options (--upload-p).
                if any(long.startswith(option) for long in _GIT_LONG_RISKS):
                    self.analysis.risk(f"the git option {option} can run other programs")
            elif option in _GIT_SHORT_RISKS.get(subcommand, ()):
                self.analysis.risk(f"the git option {option} can run other programs")

    def word(self, node: Any) -> str:
        """The word's value after quote removal; whatever would expand is a risk."""
        kind = node.type
        if kind == "word":
            return self.plain_word(_text(node))
        if kind == "number":
            return _text(node)
        if kind == "raw_string":
            return _text(node)[1:-1]
        if kind == "string":
            return self.double_quoted(node)
        if kind == "concatenation":
            self.braces(_text(node))
            return "".join(self.word(child) for child in node.named_children)
        if kind in _EXPANSIONS or kind == "process_substitution":
            self.expansion(node)
            return _text(node)
        self.analysis.risk(_describe(node))
        return _text(node)

    def braces(self, text: str) -> None:
        if _BRACES.search(text):
            self.analysis.risk(f"it uses brace expansion ({_short(text)})")

    def plain_word(self, text: str) -> str:
        self.braces(text)
        if re.match(r"^[*?\[]", text):
            self.analysis.risk(f"the wildcard {text} could expand to an option")
        return re.sub(r"\\(.)", r"\1", text.replace("\\\n", ""), flags=re.S)

    def double_quoted(self, node: Any) -> str:
        parts: list[str] = []
        for child in node.named_children:
            if child.type == "string_content":
                parts.append(re.sub(r'\\([$`"\\\n])', r"\1", _text(child)))
            else:
                self.expansion(child)
                parts.append(_text(child))
        return "".join(parts)

    def expansion(self, node: Any) -> None:
        kind = node.type
        if kind in ("command_substitution", "process_substitution"):
            self.analysis.risk(f"it runs a command substitution ({_short(_text(node))})")
            _Walker(self.analysis, self.depth + 1, inner=True).statements(node)
        elif kind in ("simple_expansion", "expansion"):
            self.analysis.risk(
                f"it expands a variable ({_short(_text(node).strip())}) the rules cannot see"
            )
            for child in node.named_children:
                if child.type in ("command_substitution", "process_substitution"):
                    self.expansion(child)
        elif kind == "arithmetic_expansion":
            self.analysis.risk(f"it uses shell arithmetic ({_short(_text(node))})")
        else:
            self.analysis.risk(_describe(node))


# An unescaped {…,…} or {a..b}: bash turns one word into several.
_BRACES = re.compile(r"(?<!\\)\{[^{}]*(?:,|\.\.)[^{}]*(?<!\\)\}")
_EXPANSIONS = {
    "command_substitution",
    "simple_expansion",
    "expansion",
    "arithmetic_expansion",
    "process_substitution",
}
_KIND_WORDS = {
    "function_definition": "it defines a shell function",
    "variable_assignment": "it sets a shell variable",
    "declaration_command": "it declares shell variables",
    "unset_command": "it unsets shell variables",
    "c_style_for_statement": "it uses a C-style for loop with arithmetic",
    "ansi_c_string": "it uses $'…' quoting",
    "translated_string": 'it uses $"…" quoting',
    "ERROR": "the shell parser could not read all of it",
}


def _describe(node: Any) -> str:
    return _KIND_WORDS.get(
        node.type, f"it uses a shell construct ({node.type}) that the rules do not check"
    )


def _short(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _index(parent: Any, child: Any) -> int:
    return next(i for i, c in enumerate(parent.named_children) if c.id == child.id)
