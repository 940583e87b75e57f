"""Which commands the set-up scripts run on the host, and where each one comes from.

Shared by ``tests/unit/test_host_packages.py`` (every command comes from the base system or from
a package of ``scripts/host-packages.txt``) and ``tests/integration/test_05_host_packages.py``
(after ``scripts/install-host-packages.sh`` on a clean debootstrap root, every command is there).

The extractor reads the Bash scripts under ``scripts/`` and the Makefile's recipes with a small
shell lexer (quotes, ``$(...)``, backquotes, ``${...}``, ``$((...))``, here-documents, case
clauses, ``[[ ]]``, arrays) and reports the first word of every simple command, in every
position: after ``|``, ``&&``, ``||``, ``;``, inside command and process substitutions, inside
unquoted here-documents, ``if``/``while`` conditions, ``trap`` strings and ``find -exec``.
Commands that run other commands are looked through: ``exec``, ``command``, ``timeout N``,
``nice``, ``setsid``, ``xargs``, ``env`` and the like, and the scripts' own functions that run
their arguments (``wait_for``, ``start_daemon``...: inferred from ``shift`` and ``"$@"``).
``command -v X`` and ``type -p X`` count as calls of ``X``. Not reported: shell builtins and
keywords, functions defined in a script or in the files it sources, words that are expansions
(``"$kc"``, ``"$BIN_DIR/pulumi"``: the project's own binaries in the cache), paths, and the
arguments of ``chroot`` and ``kubectl exec`` (they run in an image or a pod, not on the host).
"""

from __future__ import annotations

import bisect
import functools
import os
import re
import shutil
import subprocess
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MANIFEST = REPO / "scripts" / "host-packages.txt"
SCRIPT_PATTERNS = ("scripts/*.sh", "scripts/cluster/*.sh")
MAKEFILE = "Makefile"
# Where Debian installs commands; /usr/local is never a package's.
PACKAGE_DIRS = ("/usr/sbin", "/usr/bin", "/sbin", "/bin")
STANDARD_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# Commands the scripts run that are not Debian packages of the manifest, on purpose. Keep this
# short: each entry must be used by a script (the unit test checks) and say why it is not in
# scripts/host-packages.txt.
EXCEPTIONS: dict[str, str] = {
    "go": (
        "the Go toolchain (>= 1.24, from go.dev, here /usr/local/go): Debian bookworm's golang is "
        "1.19, too old for the modules; bootstrap-tools.sh, build.sh and build-esc-eval.sh check "
        "for it and say what to install"
    ),
    "python3": (
        "the developer's Python 3.11+ (here pyenv's, /root/.pyenv), from which `make venv` "
        "builds .venv; it runs the Makefile before any Debian package could be installed"
    ),
    "pulumi": (
        "bootstrap-tools.sh only looks for a `pulumi` already on PATH (a laptop) and otherwise "
        "builds its own into $CACHE/bin"
    ),
    "pulumi-language-python": (
        "bootstrap-tools.sh only looks for it next to a system `pulumi`; otherwise it builds "
        "its own into $CACHE/bin"
    ),
    "kind": (
        "only SOPHIA_CLUSTER=kind (a laptop, GitHub Actions: machines that run privileged "
        "containers); not in Debian bookworm; up.sh checks for it first (kind_usable)"
    ),
    "docker": (
        "only SOPHIA_CLUSTER=kind, next to kind; the local cluster runs containerd, never docker"
    ),
}

# External commands that run another command from their arguments: name -> (options that take a
# separate argument, positional arguments before the command).
COMMAND_WRAPPERS: dict[str, tuple[frozenset[str], int]] = {
    "env": (frozenset({"-u", "--unset", "-C", "--chdir"}), 0),
    "flock": (frozenset({"-w", "--timeout", "-E", "--conflict-exit-code"}), 1),
    "ionice": (frozenset({"-c", "--class", "-n", "--classdata"}), 0),
    "nice": (frozenset({"-n", "--adjustment"}), 0),
    "nohup": (frozenset(), 0),
    "setsid": (frozenset(), 0),
    "stdbuf": (frozenset({"-i", "-o", "-e"}), 0),
    "sudo": (frozenset({"-u", "-g", "-C", "-D", "-h", "-p", "-r", "-t", "-U"}), 0),
    "timeout": (frozenset({"-s", "--signal", "-k", "--kill-after"}), 1),
    "unshare": (
        frozenset({"-S", "--setuid", "-G", "--setgid", "-R", "--root", "-w", "--wd"}),
        0,
    ),
    "xargs": (
        frozenset(
            {"-a", "--arg-file", "-d", "--delimiter", "-E", "-I", "-L", "-n", "--max-args"}
            | {"-P", "--max-procs", "-s", "--max-chars"}
        ),
        0,
    ),
}
_SHELLS = frozenset({"sh", "bash", "dash"})
_ALL_ARGUMENTS = frozenset({'"$@"', "$@", '"${@}"', "${@}"})
_OPERATORS = (
    *("<<<", "<<-", "&>>", ";;&"),
    *("<<", ">>", "&&", "||", ";;", ";&", "|&", "<&", ">&", "<>", ">|", "&>"),
    *("|", "&", ";", "<", ">"),
)
REDIRECTIONS = frozenset({"<<<", "<<-", "&>>", "<<", ">>", "<&", ">&", "<>", ">|", "&>", "<", ">"})
_METACHARACTERS = frozenset(" \t\n;&|()<>")
_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\[[^\]]*\])?\+?=")
_PREFIX_WORDS = frozenset({"!", "then", "do", "else", "elif", "if", "while", "until", "time"})


class ShellSyntaxError(Exception):
    """The lexer cannot follow a script (the test then fails instead of guessing)."""


@dataclass
class Token:
    kind: str  # "word", "op", "nl" (newline) or "arith" (a (( )) command)
    text: str  # as written
    line: int
    value: str | None = None  # a word without quotes; None when it contains an expansion
    subs: list[list[Token]] = field(default_factory=list)  # command lists nested in it


@dataclass(frozen=True)
class Call:
    """One command a script runs (or looks up with ``command -v``) on the host."""

    file: str  # relative to the repository
    line: int
    name: str
    checked: bool = False  # a look-up (command -v, type -p), not a run

    def where(self) -> str:
        return f"{self.file}:{self.line}"


class _Lexer:
    """Splits shell source into tokens; nested code ($(), <(), ``, here-documents) into subs."""

    def __init__(self, source: str, first_line: int = 1) -> None:
        self.s = source
        self.i = 0
        self.first_line = first_line
        self.newlines = [m.start() for m in re.finditer("\n", source)]
        self.heredocs: list[tuple[str, bool, bool, Token]] = []

    def line(self, pos: int) -> int:
        return self.first_line + bisect.bisect_left(self.newlines, pos)

    def error(self, message: str) -> ShellSyntaxError:
        return ShellSyntaxError(f"line {self.line(self.i)}: {message}")

    def tokens(self, closing: bool = False) -> list[Token]:
        """Tokens up to the end, or (closing) up to the ``)`` that closes a ``$(`` or ``<(``."""
        s = self.s
        out: list[Token] = []
        depth = cases = 0
        while True:
            if self.i >= len(s):
                if closing:
                    raise self.error("unterminated $( or <(")
                if self.heredocs:
                    raise self.error(f"here-document {self.heredocs[0][0]} has no body")
                return out
            c = s[self.i]
            at_command = not out or out[-1].kind in ("nl", "op")
            if c in " \t":
                self.i += 1
            elif c == "\\" and s.startswith("\n", self.i + 1):
                self.i += 2
            elif c == "#":
                end = s.find("\n", self.i)
                self.i = len(s) if end < 0 else end
            elif c == "\n":
                out.append(Token("nl", c, self.line(self.i)))
                self.i += 1
                self.read_heredocs()
            elif c == ")":
                if closing and depth == 0 and cases <= 0:
                    self.i += 1
                    return out
                depth -= 1
                out.append(Token("op", c, self.line(self.i)))
                self.i += 1
            elif s.startswith("((", self.i):
                line = self.line(self.i)
                self.i += 2
                out.append(Token("arith", "((", line, None, self.arithmetic()))
            elif c == "(":
                depth += 1
                out.append(Token("op", c, self.line(self.i)))
                self.i += 1
            elif c in "<>" and s.startswith("(", self.i + 1):
                line = self.line(self.i)
                self.i += 2
                out.append(Token("word", c + "(", line, None, [self.tokens(closing=True)]))
            else:
                op = next((o for o in _OPERATORS if s.startswith(o, self.i)), None)
                if op is not None:
                    out.append(Token("op", op, self.line(self.i)))
                    self.i += len(op)
                    continue
                word = self.word()
                if word.text.isdigit() and self.i < len(s) and s[self.i] in "<>":
                    continue  # the file descriptor of a redirection (2>&1, 8>file)
                if out and out[-1].kind == "op" and out[-1].text in ("<<", "<<-"):
                    delimiter = word.value if word.value is not None else word.text
                    expand = not any(q in word.text for q in "'\"\\")
                    self.heredocs.append((delimiter, expand, out[-1].text == "<<-", word))
                elif at_command and word.value == "case":
                    cases += 1
                elif at_command and word.value == "esac":
                    cases -= 1
                out.append(word)

    def read_heredocs(self) -> None:
        s = self.s
        for delimiter, expand, strip, token in self.heredocs:
            start = self.i
            while True:
                if self.i >= len(s):
                    raise self.error(f"here-document {delimiter} is not closed")
                begin = self.i
                end = s.find("\n", begin)
                end = len(s) if end < 0 else end
                line = s[begin:end]
                self.i = min(end + 1, len(s))
                if (line.lstrip("\t") if strip else line) == delimiter:
                    break
            if expand:
                token.subs.extend(_Lexer(s[start:begin], self.line(start)).expansions())
        self.heredocs.clear()

    def expansions(self) -> list[list[Token]]:
        """The command substitutions of an unquoted here-document body."""
        subs: list[list[Token]] = []
        while self.i < len(self.s):
            c = self.s[self.i]
            if c == "\\":
                self.i += 2
            elif c == "$":
                self.dollar([], subs)
            elif c == "`":
                self.backquoted(subs)
            else:
                self.i += 1
        return subs

    def word(self) -> Token:
        s = self.s
        start = self.i
        line = self.line(start)
        value: list[str] = []
        subs: list[list[Token]] = []
        literal = True
        while self.i < len(s):
            c = s[self.i]
            if c in _METACHARACTERS:
                if c == "(" and _ASSIGNMENT.fullmatch(s[start : self.i]):
                    # NAME=(...): an array; its elements are words, not commands.
                    self.i += 1
                    for token in self.tokens(closing=True):
                        subs.extend(token.subs)
                    literal = False
                    continue
                break
            if c == "\\":
                if not s.startswith("\n", self.i + 1):
                    value.append(s[self.i + 1 : self.i + 2])
                self.i += 2
            elif c == "'":
                end = s.find("'", self.i + 1)
                if end < 0:
                    raise self.error("unterminated '")
                value.append(s[self.i + 1 : end])
                self.i = end + 1
            elif c == '"':
                literal = self.double_quoted(value, subs) and literal
            elif c == "$":
                literal = self.dollar(value, subs) and literal
            elif c == "`":
                self.backquoted(subs)
                literal = False
            else:
                value.append(c)
                self.i += 1
        return Token("word", s[start : self.i], line, "".join(value) if literal else None, subs)

    def double_quoted(self, value: list[str], subs: list[list[Token]]) -> bool:
        s = self.s
        self.i += 1
        literal = True
        while True:
            if self.i >= len(s):
                raise self.error('unterminated "')
            c = s[self.i]
            if c == '"':
                self.i += 1
                return literal
            if c == "\\":
                escaped = s[self.i + 1 : self.i + 2]
                if escaped != "\n":
                    value.append(escaped if escaped in '$`"\\' else "\\" + escaped)
                self.i += 2
            elif c == "$":
                literal = self.dollar(value, subs) and literal
            elif c == "`":
                self.backquoted(subs)
                literal = False
            else:
                value.append(c)
                self.i += 1

    def dollar(self, value: list[str], subs: list[list[Token]]) -> bool:
        """Consumes an expansion at ``$``; True when the ``$`` was a plain character."""
        s = self.s
        following = s[self.i + 1 : self.i + 2]
        if s.startswith("$((", self.i):
            self.i += 3
            subs.extend(self.arithmetic())
        elif following == "(":
            self.i += 2
            subs.append(self.tokens(closing=True))
        elif following == "{":
            self.i += 2
            self.braced(subs)
        elif following == "'":
            self.i += 2
            while self.i < len(s) and s[self.i] != "'":
                self.i += 2 if s[self.i] == "\\" else 1
            self.i += 1
        elif following == '"':
            self.i += 1
            self.double_quoted([], subs)
        elif following.isalpha() or following == "_":
            match = re.compile(r"[A-Za-z_][A-Za-z0-9_]*").match(s, self.i + 1)
            assert match is not None
            self.i = match.end()
        elif following and (following.isdigit() or following in "@*#?$!-"):
            self.i += 2
        else:
            value.append("$")
            self.i += 1
            return True
        return False

    def braced(self, subs: list[list[Token]]) -> None:
        s = self.s
        depth = 1
        while True:
            if self.i >= len(s):
                raise self.error("unterminated ${")
            c = s[self.i]
            if c == "\\":
                self.i += 2
            elif c == "'":
                end = s.find("'", self.i + 1)
                if end < 0:
                    raise self.error("unterminated ' in ${...}")
                self.i = end + 1
            elif c == '"':
                self.double_quoted([], subs)
            elif c == "$":
                self.dollar([], subs)
            elif c == "`":
                self.backquoted(subs)
            else:
                self.i += 1
                depth += {"{": 1, "}": -1}.get(c, 0)
                if depth == 0:
                    return

    def arithmetic(self) -> list[list[Token]]:
        """Skips to the ``))`` that closes ``((`` or ``$((``; returns what it substitutes."""
        s = self.s
        subs: list[list[Token]] = []
        depth = 0
        while True:
            if self.i >= len(s):
                raise self.error("unterminated ((")
            c = s[self.i]
            if c == ")" and depth == 0:
                if not s.startswith("))", self.i):
                    raise self.error("unbalanced ) in (( ))")
                self.i += 2
                return subs
            if c == "\\":
                self.i += 2
            elif c == "$":
                self.dollar([], subs)
            elif c == "`":
                self.backquoted(subs)
            elif c == '"':
                self.double_quoted([], subs)
            else:
                depth += {"(": 1, ")": -1}.get(c, 0)
                self.i += 1

    def backquoted(self, subs: list[list[Token]]) -> None:
        s = self.s
        start = self.i
        end = self.i + 1
        chars: list[str] = []
        while True:
            if end >= len(s):
                raise self.error("unterminated `")
            c = s[end]
            if c == "\\" and s[end + 1 : end + 2] in ("$", "`", "\\"):
                chars.append(s[end + 1])
                end += 2
                continue
            if c == "`":
                break
            chars.append(c)
            end += 1
        subs.append(_Lexer("".join(chars), self.line(start)).tokens())
        self.i = end + 1


@functools.cache
def shell_builtins() -> frozenset[str]:
    """Bash's builtins and reserved words (compgen -b -k)."""
    result = subprocess.run(
        ["bash", "-c", "compgen -b; compgen -k"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return frozenset(result.stdout.split())


class _Scanner:
    """Finds the commands of one file's code; ``functions`` and ``runners`` are its scope."""

    def __init__(self, file: str, functions: Collection[str], runners: Mapping[str, int]) -> None:
        self.file = file
        self.functions = functions
        self.scope_runners = runners
        self.builtins = shell_builtins()
        self.calls: list[Call] = []
        self.defined: set[str] = set()
        self.sources: list[tuple[int, Token | None]] = []
        self.paths: list[tuple[int, str]] = []
        self.dynamic: list[tuple[int, str]] = []
        # Functions of this file that run their arguments ("$@") as a command: name -> how
        # many arguments they shift off first.
        self.runners: dict[str, int] = {}
        self.shifts: dict[str, int] = {}

    def code(self, source: str, first_line: int = 1, function: str | None = None) -> None:
        self.block(_Lexer(source, first_line).tokens(), function)

    def nested(self, token: Token, function: str | None) -> None:
        for sub in token.subs:
            self.block(sub, function)

    def block(self, tokens: list[Token], function: str | None) -> None:
        i, n = 0, len(tokens)
        expect = True  # the next word is in command position
        cases: list[bool] = []  # per open case: at a pattern (True) or in a clause
        braces: list[str | None] = []  # per open { }: the function it is the body of
        pending: str | None = None  # a function whose body comes next

        def is_op(k: int, *texts: str) -> bool:
            return k < n and tokens[k].kind == "op" and tokens[k].text in texts

        while i < n:
            t = tokens[i]
            inside = next((b for b in reversed(braces) if b is not None), function)
            if pending is not None and t.kind != "nl" and t.value != "{":
                pending = None
            if cases and cases[-1]:
                if t.kind == "nl":
                    i += 1
                elif t.kind == "word" and t.value == "esac":
                    cases.pop()
                    expect = False
                    i += 1
                else:
                    while i < n and not is_op(i, ")"):
                        self.nested(tokens[i], inside)
                        i += 1
                    i += 1
                    cases[-1] = False
                    expect = True
                continue
            if t.kind == "nl":
                expect = True
                i += 1
                continue
            if t.kind == "op":
                if t.text in REDIRECTIONS:
                    if i + 1 < n:
                        self.nested(tokens[i + 1], inside)
                    i += 2
                    continue
                if t.text in (";;", ";&", ";;&") and cases:
                    cases[-1] = True
                expect = True
                i += 1
                continue
            if t.kind == "arith" or not expect:
                self.nested(t, inside)
                expect = False
                i += 1
                continue
            v = t.value
            if v == "{":
                braces.append(pending)
                pending = None
                i += 1
            elif v == "}":
                if braces:
                    braces.pop()
                expect = False
                i += 1
            elif v in _PREFIX_WORDS:
                i += 1
            elif v in ("fi", "done", "esac"):
                if v == "esac" and cases:
                    cases.pop()
                expect = False
                i += 1
            elif v == "case":
                if i + 1 < n:
                    self.nested(tokens[i + 1], inside)
                i += 3  # case WORD in
                cases.append(True)
            elif v in ("for", "select"):
                i += 1
                while i < n and tokens[i].kind != "nl" and not is_op(i, ";", "&"):
                    self.nested(tokens[i], inside)
                    i += 1
            elif v == "function" and i + 1 < n and tokens[i + 1].value:
                pending = tokens[i + 1].value
                self.defined.add(str(pending))
                i += 4 if is_op(i + 2, "(") and is_op(i + 3, ")") else 2
            elif v == "[[":
                i += 1
                while i < n and not (tokens[i].kind == "word" and tokens[i].value == "]]"):
                    self.nested(tokens[i], inside)
                    i += 1
                i += 1
                expect = False
            elif v is not None and is_op(i + 1, "(") and is_op(i + 2, ")"):
                self.defined.add(v)
                pending = v
                i += 3
            else:
                words: list[Token] = []
                while i < n:
                    w = tokens[i]
                    if w.kind == "word":
                        self.nested(w, inside)
                        words.append(w)
                        i += 1
                    elif w.kind == "op" and w.text in REDIRECTIONS:
                        if i + 1 < n:
                            self.nested(tokens[i + 1], inside)
                        i += 2
                    else:
                        break
                self.simple(words, 0, inside)
                expect = False

    def call(self, word: Token, checked: bool = False) -> None:
        assert word.value is not None
        self.calls.append(Call(self.file, word.line, word.value, checked))

    def simple(self, words: list[Token], k: int, function: str | None) -> None:
        """The command of a simple command's words (from ``k``), through wrappers."""
        while k < len(words):
            w = words[k]
            name = w.value
            if _ASSIGNMENT.match(w.text):
                k += 1
                continue
            if name is None:
                if w.text in _ALL_ARGUMENTS and function is not None:
                    self.runners.setdefault(function, self.shifts.get(function, 0))
                self.dynamic.append((w.line, w.text))
                return
            if not name or name.startswith("-"):
                return
            if name in self.functions:
                skip = self.scope_runners.get(name)
                if skip is None:
                    return
                k += 1 + skip
                continue
            if "/" in name:
                self.paths.append((w.line, name))
                return
            if name in self.builtins:
                self.builtin(words, k, function)
                return
            self.call(w)
            spec = COMMAND_WRAPPERS.get(name)
            if spec is not None:
                k = _skip_options(words, k + 1, *spec)
                continue
            if name == "find":
                self.find_exec(words, k, function)
            elif name in _SHELLS:
                self.shell_c(words, k, function)
            elif name == "which":
                for arg in words[k + 1 :]:
                    if arg.value and not arg.value.startswith("-"):
                        self.call(arg, checked=True)
            return

    def builtin(self, words: list[Token], k: int, function: str | None) -> None:
        name = words[k].value
        rest = words[k + 1 :]
        options = 0
        while options < len(rest) and (rest[options].value or "").startswith("-"):
            options += 1
        if name == "command":
            if any(c in (w.value or "") for w in rest[:options] for c in "vV"):
                for arg in rest[options:]:
                    if arg.value:
                        self.call(arg, checked=True)
            else:
                self.simple(words, k + 1 + options, function)
        elif name in ("type", "hash"):
            for arg in rest[options:]:
                if arg.value:
                    self.call(arg, checked=True)
        elif name == "exec":
            skip = sum(2 if w.value == "-a" else 1 for w in rest[:options])
            self.simple(words, k + 1 + skip, function)
        elif name == "trap":
            if len(rest) > 1 and rest[0].value and not rest[0].value.startswith("-"):
                self.code(rest[0].value, rest[0].line, function)
        elif name == "eval":
            if rest and all(w.value is not None for w in rest):
                self.code(" ".join(w.value or "" for w in rest), rest[0].line, function)
        elif name in (".", "source"):
            self.sources.append((words[k].line, rest[0] if rest else None))
        elif name == "shift" and function is not None and function not in self.runners:
            count = rest[0].value if rest else "1"
            self.shifts[function] = self.shifts.get(function, 0) + int(
                count if count and count.isdigit() else 1
            )

    def find_exec(self, words: list[Token], k: int, function: str | None) -> None:
        for j in range(k + 1, len(words)):
            if words[j].value in ("-exec", "-execdir", "-ok", "-okdir"):
                end = next(
                    (e for e in range(j + 1, len(words)) if words[e].value in (";", "+")),
                    len(words),
                )
                self.simple(words[:end], j + 1, function)

    def shell_c(self, words: list[Token], k: int, function: str | None) -> None:
        rest = words[k + 1 :]
        for j, w in enumerate(rest):
            v = w.value or ""
            if not v.startswith("-"):
                return
            if not v.startswith("--") and "c" in v[1:]:
                script = next(
                    (a for a in rest[j + 1 :] if not (a.value or "-").startswith("-")), None
                )
                if script is not None and script.value is not None:
                    self.code(script.value, script.line, function)
                return


def _skip_options(
    words: list[Token], k: int, with_argument: frozenset[str], positional: int
) -> int:
    while k < len(words):
        v = words[k].value
        if v is None or not v.startswith("-") or v == "-":
            break
        k += 1
        if v == "--":
            break
        if v in with_argument:
            k += 1
    return k + positional


@dataclass
class Extraction:
    """The commands every scanned file runs, and what the scanner could not follow."""

    calls: list[Call]
    problems: list[str]
    # "file:function" -> how many arguments the function shifts off before running the rest.
    runners: dict[str, int]
    # "file:line: word": command words that are expansions, skipped.
    dynamic: list[str]

    def names(self) -> set[str]:
        return {c.name for c in self.calls}

    def by_name(self) -> dict[str, list[Call]]:
        grouped: dict[str, list[Call]] = {}
        for c in self.calls:
            grouped.setdefault(c.name, []).append(c)
        return grouped


def script_files(repo: Path = REPO) -> list[Path]:
    return sorted({p for pattern in SCRIPT_PATTERNS for p in repo.glob(pattern)})


def makefile_recipes(path: Path) -> list[tuple[int, str]]:
    """The Makefile's recipe lines (continuations joined) as shell code, with their line."""
    lines = path.read_text().splitlines()
    recipes: list[tuple[int, str]] = []
    i = 0
    while i < len(lines):
        if lines[i].startswith("\t"):
            first = i + 1
            text = lines[i][1:]
            while text.endswith("\\") and i + 1 < len(lines):
                i += 1
                text += "\n" + lines[i].removeprefix("\t")
            recipes.append((first, _make_to_shell(text.lstrip(" @-+"))))
        i += 1
    return recipes


def _make_to_shell(text: str) -> str:
    """Make's expansions become a shell variable (an expansion: skipped as a command)."""
    out: list[str] = []
    i = 0
    while i < len(text):
        if text[i] != "$":
            out.append(text[i])
            i += 1
            continue
        following = text[i + 1 : i + 2]
        if following == "$":
            out.append("$")
            i += 2
            continue
        if following in ("(", "{"):
            close = ")" if following == "(" else "}"
            depth, j = 0, i + 1
            while j < len(text):
                depth += {following: 1, close: -1}.get(text[j], 0)
                if depth == 0:
                    break
                j += 1
            i = j + 1
        else:
            i += 2
        out.append("${MAKE_EXPANSION}")
    return "".join(out)


def _source_target(path: Path, line: int, word: Token | None, lines: list[str]) -> Path | None:
    """The file a ``.``/``source`` at ``line`` reads: its ``# shellcheck source=`` directive,
    or the literal path."""
    j = line - 2
    while j >= 0 and lines[j].lstrip().startswith("#"):
        match = re.search(r"\bsource=(\S+)", lines[j])
        if match and match.group(1) != "/dev/null":
            return (path.parent / match.group(1)).resolve()
        j -= 1
    if word is not None and word.value:
        literal = Path(word.value)
        return literal if literal.is_absolute() else (path.parent / literal).resolve()
    return None


@dataclass
class _FileScan:
    path: Path
    name: str
    pieces: list[tuple[int, str]]  # (first line, shell code)
    defined: set[str] = field(default_factory=set)
    runners: dict[str, int] = field(default_factory=dict)
    sources: list[Path] = field(default_factory=list)
    scanner: _Scanner | None = None
    problems: list[str] = field(default_factory=list)


def _scan(file: _FileScan, functions: Collection[str], runners: Mapping[str, int]) -> None:
    scanner = _Scanner(file.name, functions, runners)
    file.problems = []
    for first, code in file.pieces:
        try:
            scanner.code(code, first)
        except ShellSyntaxError as error:
            file.problems.append(f"{file.name}: {error}")
    file.scanner = scanner
    file.defined = scanner.defined
    file.runners = scanner.runners


def extract(repo: Path = REPO) -> Extraction:
    """Every command the scripts under scripts/ and the Makefile's recipes run on the host."""
    return _extract(str(repo))


@functools.cache
def _extract(root: str) -> Extraction:
    repo = Path(root)
    files: dict[Path, _FileScan] = {}
    for path in script_files(repo):
        files[path.resolve()] = _FileScan(
            path, str(path.relative_to(repo)), [(1, path.read_text())]
        )
    if (repo / MAKEFILE).is_file():
        makefile = repo / MAKEFILE
        files[makefile.resolve()] = _FileScan(makefile, MAKEFILE, makefile_recipes(makefile))
    problems: list[str] = []

    def load(path: Path) -> _FileScan | None:
        if path not in files and path.is_file():
            files[path] = _FileScan(path, str(path.relative_to(repo)), [(1, path.read_text())])
            _scan(files[path], (), {})
            link_sources(files[path])
        return files.get(path)

    def link_sources(file: _FileScan) -> None:
        assert file.scanner is not None
        lines = file.path.read_text().splitlines()
        file.sources = []
        for line, word in file.scanner.sources:
            target = _source_target(file.path, line, word, lines)
            if target is None or load(target) is None:
                problems.append(
                    f"{file.name}:{line}: cannot tell which file this sources; add a "
                    "`# shellcheck source=FILE` directive above it"
                )
            else:
                file.sources.append(target)

    for file in list(files.values()):
        _scan(file, (), {})
    for file in list(files.values()):
        link_sources(file)

    def scope(file: _FileScan) -> list[_FileScan]:
        seen: dict[Path, _FileScan] = {}
        todo = [file]
        while todo:
            f = todo.pop()
            if f.path.resolve() in seen:
                continue
            seen[f.path.resolve()] = f
            todo.extend(files[s] for s in f.sources if s in files)
        return list(seen.values())

    # Again with each file's scope, until the inferred wrapper functions settle.
    for _ in range(5):
        before = {f.name: dict(f.runners) for f in files.values()}
        for file in files.values():
            visible = scope(file)
            functions = set().union(*(f.defined for f in visible))
            runners: dict[str, int] = {}
            for f in visible:
                runners.update(f.runners)
            _scan(file, functions, runners)
        if before == {f.name: f.runners for f in files.values()}:
            break

    calls: list[Call] = []
    dynamic: list[str] = []
    all_runners: dict[str, int] = {}
    for file in files.values():
        assert file.scanner is not None
        problems.extend(file.problems)
        calls.extend(file.scanner.calls)
        dynamic.extend(f"{file.name}:{line}: {text}" for line, text in file.scanner.dynamic)
        all_runners.update({f"{file.name}:{fn}": n for fn, n in file.runners.items()})
        if file.name == MAKEFILE:
            for line, command in file.scanner.paths:
                if not command.startswith("/") and not (repo / command).exists():
                    problems.append(f"{MAKEFILE}:{line}: runs {command}, which does not exist")
    calls.sort(key=lambda c: (c.file, c.line, c.name))
    return Extraction(calls, problems, all_runners, dynamic)


def scan_text(source: str, name: str = "<snippet>") -> Extraction:
    """The commands of one piece of shell code (its own functions in scope), for tests."""
    file = _FileScan(Path(name), name, [(1, source)])
    _scan(file, (), {})
    for _ in range(3):
        _scan(file, set(file.defined), dict(file.runners))
    assert file.scanner is not None
    dynamic = [f"{name}:{line}: {text}" for line, text in file.scanner.dynamic]
    runners = {f"{name}:{fn}": n for fn, n in file.runners.items()}
    return Extraction(list(file.scanner.calls), file.problems, runners, dynamic)


# ------------------------------------------------------------------ the manifest and dpkg


def manifest_packages(path: Path = MANIFEST) -> list[str]:
    """The package names of the manifest, as ``install-host-packages.sh --list`` prints them."""
    names: list[str] = []
    for line in path.read_text().splitlines():
        fields = line.split("#", 1)[0].split()
        if fields:
            names.append(fields[0])
    return names


@dataclass(frozen=True)
class Provider:
    """Where a command comes from on this machine."""

    name: str
    path: str | None  # where it was found (None: not on this machine)
    packages: tuple[str, ...]  # the Debian packages that own that file
    base: tuple[str, ...]  # of those, the ones that are Essential: yes or Priority: required


def _aliases(path: str) -> list[str]:
    """The path and its merged-/usr twin (/usr/bin <-> /bin, /usr/sbin <-> /sbin)."""
    for usr, root in (("/usr/bin/", "/bin/"), ("/usr/sbin/", "/sbin/")):
        if path.startswith(usr):
            return [path, root + path.removeprefix(usr)]
        if path.startswith(root):
            return [path, usr + path.removeprefix(root)]
    return [path]


def _dpkg(*args: str) -> str:
    result = subprocess.run(
        ["dpkg-query", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "LC_ALL": "C"},
    )
    return result.stdout


def find_providers(names: Iterable[str]) -> dict[str, Provider]:
    """For each command: where it is on this machine and which Debian package installed it."""
    found: dict[str, str | None] = {}
    candidates: dict[str, list[str]] = {}
    for name in sorted(set(names)):
        path = next((f"{d}/{name}" for d in PACKAGE_DIRS if os.path.exists(f"{d}/{name}")), None)
        if path is None:
            found[name] = shutil.which(name, path=STANDARD_PATH)
            candidates[name] = []
            continue
        found[name] = path
        # Symlinks (alternatives, /bin -> usr/bin) are owned by no package: try the target too.
        paths = _aliases(path) + _aliases(os.path.realpath(path))
        candidates[name] = list(dict.fromkeys(paths))
    owners: dict[str, set[str]] = {}
    every = sorted({p for paths in candidates.values() for p in paths})
    if every:
        for line in _dpkg("-S", *every).splitlines():
            if line.startswith("diversion by") or ": /" not in line:
                continue
            owned_by, owned = line.split(": /", 1)
            owners.setdefault("/" + owned, set()).update(
                p.strip().split(":")[0] for p in owned_by.split(",")
            )
    all_packages = sorted({p for ps in owners.values() for p in ps})
    base: set[str] = set()
    if all_packages:
        query = _dpkg("-W", "-f=${Package}\t${Essential}\t${Priority}\n", *all_packages)
        for row in query.splitlines():
            package, essential, priority = [*row.split("\t"), "", ""][:3]
            if essential == "yes" or priority == "required":
                base.add(package)
    providers: dict[str, Provider] = {}
    for name, options in candidates.items():
        packages = sorted({p for path in options for p in owners.get(path, ())})
        providers[name] = Provider(
            name, found[name], tuple(packages), tuple(p for p in packages if p in base)
        )
    return providers


def check(
    calls: Iterable[Call],
    manifest: Collection[str],
    providers: Mapping[str, Provider] | None = None,
    exceptions: Mapping[str, str] = EXCEPTIONS,
) -> list[str]:
    """One message per command that neither the base system, nor a package of ``manifest``,
    nor ``exceptions`` accounts for."""
    grouped: dict[str, list[Call]] = {}
    for c in calls:
        grouped.setdefault(c.name, []).append(c)
    if providers is None:
        providers = find_providers(grouped)
    problems: list[str] = []
    for name, where in sorted(grouped.items()):
        if name in exceptions:
            continue
        provider = providers.get(name) or find_providers([name])[name]
        if provider.base or set(provider.packages) & set(manifest):
            continue
        places = ", ".join(c.where() for c in where[:3])
        if len(where) > 3:
            places += f" and {len(where) - 3} more"
        verb = "looks up" if all(c.checked for c in where) else "runs"
        fix = (
            "add it to scripts/host-packages.txt (one line: the package, then why), or, if it "
            "is no Debian package, to EXCEPTIONS in tests/hostpackages.py with the reason"
        )
        if provider.path is None:
            problems.append(
                f"{places} {verb} `{name}`, which is not installed on this machine: find the "
                f"Debian package that provides it (apt-file search -x 'bin/{name}$') and {fix}"
            )
        elif not provider.packages:
            problems.append(
                f"{places} {verb} `{name}`, found at {provider.path}, which no Debian package "
                f"installed: if a Debian package provides it, {fix}"
            )
        else:
            problems.append(
                f"{places} {verb} `{name}` ({provider.path}, Debian package "
                f"{', '.join(provider.packages)}), which is neither in scripts/host-packages.txt "
                f"nor in the base system (Essential: yes or Priority: required): add "
                f"`{provider.packages[0]}` to scripts/host-packages.txt with the reason"
            )
    return problems
