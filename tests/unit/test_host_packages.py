"""Every command the set-up scripts run on the host comes from the base system (Essential or
Priority: required) or from a package of scripts/host-packages.txt, or is a documented exception.

The commands are extracted from scripts/*.sh, scripts/cluster/*.sh and the Makefile's recipes by
tests/hostpackages.py; each is found on this machine and traced to its Debian package with
``dpkg -S``. The negative checks run the same function against the manifest without one of its
packages: the test passes only because the manifest is complete, not because the extractor
misses the calls. tests/integration/test_05_host_packages.py proves the same on a clean root.
"""

from __future__ import annotations

import re
import subprocess

import pytest

from tests.hostpackages import (
    EXCEPTIONS,
    MANIFEST,
    REPO,
    Call,
    Extraction,
    Provider,
    check,
    extract,
    find_providers,
    manifest_packages,
    scan_text,
)


@pytest.fixture(scope="module")
def extraction() -> Extraction:
    return extract()


@pytest.fixture(scope="module")
def providers(extraction: Extraction) -> dict[str, Provider]:
    return find_providers(extraction.names())


def names(source: str) -> set[str]:
    result = scan_text(source)
    assert result.problems == []
    return result.names()


# ------------------------------------------------------------------ the extractor


def test_the_extractor_follows_every_script(extraction: Extraction) -> None:
    assert extraction.problems == [], "\n".join(extraction.problems)
    files = {c.file for c in extraction.calls}
    expected = {str(p.relative_to(REPO)) for p in REPO.glob("scripts/*.sh")}
    expected |= {str(p.relative_to(REPO)) for p in REPO.glob("scripts/cluster/*.sh")}
    assert files >= expected | {"Makefile"}


@pytest.mark.parametrize(
    ("command", "file", "how"),
    [
        ("debootstrap", "scripts/cluster/images.sh", "plain"),
        ("ipset", "scripts/cluster/lib.sh", "inside $(...) of a for list, and command -v"),
        ("ctr", "scripts/cluster/up.sh", "through the function wait_for"),
        ("containerd", "scripts/cluster/up.sh", "through the function start_daemon"),
        ("sha256sum", "scripts/build-esc-eval.sh", "through xargs -0, and after |"),
        ("base64", "scripts/cluster/up.sh", "in an unquoted here-document"),
        ("sysctl", "scripts/cluster/up.sh", "plain, and inside (( $(...) ))"),
        ("chown", "scripts/cluster/images.sh", "through find -exec"),
        ("rm", "scripts/build-esc-eval.sh", "in a trap string"),
        ("go", "scripts/cluster/lib.sh", "through timeout"),
        ("pulumi", "scripts/bootstrap-tools.sh", "type -ap in a process substitution"),
        ("runc", "scripts/cluster/lib.sh", "in a for list"),
        ("python3", "Makefile", "a recipe"),
        ("touch", "Makefile", "a recipe"),
        ("apt-get", "scripts/install-host-packages.sh", "after ||"),
    ],
)
def test_the_extractor_finds_calls_in_the_scripts(
    extraction: Extraction, command: str, file: str, how: str
) -> None:
    files = {c.file for c in extraction.by_name().get(command, [])}
    assert file in files, f"`{command}` ({how}) not found in {file}; found in {sorted(files)}"


def test_the_extractor_skips_builtins_functions_expansions_and_other_roots(
    extraction: Extraction,
) -> None:
    found = extraction.names()
    # builtins, the scripts' functions, the project's own binaries (run as "$BIN_DIR/..."),
    # commands run by chroot in an image or by kubectl exec in a pod, array elements
    for name in (
        *("echo", "printf", "local", "cd", "read", "[", "[[", "ulimit"),
        *("die", "log", "kctl", "k", "wait_for", "start_daemon", "check", "in_pod", "pack"),
        *("kubectl", "etcd", "kube-apiserver", "coredns", "kube-router", "actionlint"),
        *("getent", "groupadd", "useradd", "usermod", "redis-cli", "pause"),
    ):
        assert name not in found, f"`{name}` is no host command: {extraction.by_name()[name]}"


def test_functions_that_run_their_arguments_are_inferred(extraction: Extraction) -> None:
    # name -> how many arguments come before the command (from `shift N` before "$@")
    assert extraction.runners == {
        "scripts/cluster/lib.sh:start_daemon": 1,
        "scripts/cluster/lib.sh:wait_for": 3,
        "scripts/cluster/smoke.sh:check": 1,
        "scripts/cluster/smoke.sh:eventually": 1,
        "scripts/cluster/smoke.sh:fails": 0,
    }


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("a1 | a2 && a3 || a4; a5 & a6 |& a7", {"a1", "a2", "a3", "a4", "a5", "a6", "a7"}),
        ('x=$(b1) "$(b2)" `b3` <(b4) >(b5) "${v:-$(b6)}" $((1 + $(b7)))', None),
        ("cat <<EOF\nline $(c1)\n`c2`\nEOF\ncat <<'EOF'\n$(not_run)\nEOF\nc3", None),
        ("case $1 in\n  pat1 | pat2) d1 ;;\n  (*) d2; d3 ;;\nesac\nd4", None),
        ("[[ $(e1) == x && -f y ]] && e2\n(( $(e3) > 1 )) || e4", None),
        ("if ! f1; then f2; elif f3; then :; else f4; fi\nwhile f5; do f6; done", None),
        ("timeout -k 5 10 g1; exec g2; exec 8>lock; nice -n 5 g3; xargs -0 -n 1 g4", None),
        ("env -u A B=1 h1; FOO=$x h2; find . -exec h3 {} +; trap 'h4 x' EXIT; sh -c 'h5'", None),
        ("command -v i1 >/dev/null; type -ap i2; setsid i3 </dev/null & flock 8", None),
        ('f() { j1; }\nf\nrun() { shift 2; "$@"; }\nrun a b j2\nchroot /r not_run', None),
        ('ARR=(not1 not2) x+=("$(k1)")\nlocal y=$(k2)\n"$var" a; $cmd b; "$BIN/x"', None),
        ("# not0\necho \"it's # $(l1)\" # not1\n'l'2 \\\n  --opt && l3", None),
        ("2>&1 >/dev/null m1 <in; { m2; } >out; (m3) && for x in $(m4); do m5; done", None),
    ],
)
def test_the_lexer_on_snippets(source: str, expected: set[str] | None) -> None:
    """Every word of a letter and a digit is a command; not_run, not0... are none."""
    wrappers = {"cat", "timeout", "nice", "xargs", "env", "find", "sh", "setsid", "flock"}
    if expected is None:
        expected = set(re.findall(r"\b[a-m][1-7]\b", source.replace("'l'2", "l2")))
    assert names(source) - wrappers - {"chroot"} == expected


def test_snippet_details() -> None:
    calls = scan_text("cat <<EOF\nx\n$(inner)\nEOF\ncommand -v probe\n").calls
    assert Call("<snippet>", 3, "inner") in calls
    assert Call("<snippet>", 5, "probe", checked=True) in calls
    result = scan_text('w() { shift 2; "$@"; }\nw a b real\nchroot /r inside\n')
    assert result.runners == {"<snippet>:w": 2}
    assert result.names() == {"real", "chroot"}
    assert scan_text("echo 'unterminated\n").problems


# ------------------------------------------------------------------ the manifest


def test_the_manifest_reads_as_the_install_script_reads_it() -> None:
    listed = subprocess.run(
        ["bash", str(REPO / "scripts" / "install-host-packages.sh"), "--list"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout.split()
    assert listed == manifest_packages()
    assert len(set(listed)) == len(listed), "a package is listed twice"


def test_every_command_comes_from_the_base_system_or_the_manifest(
    extraction: Extraction, providers: dict[str, Provider]
) -> None:
    problems = check(extraction.calls, manifest_packages(), providers)
    assert problems == [], "\n".join(problems)


@pytest.mark.parametrize(
    ("package", "command"), [("debootstrap", "debootstrap"), ("ipset", "ipset")]
)
def test_a_manifest_without_a_package_fails(
    extraction: Extraction, providers: dict[str, Provider], package: str, command: str
) -> None:
    manifest = [p for p in manifest_packages() if p != package]
    problems = [p for p in check(extraction.calls, manifest, providers) if f"`{command}`" in p]
    assert len(problems) == 1, check(extraction.calls, manifest, providers)
    assert "scripts/cluster/" in problems[0]
    assert f"add `{package}` to scripts/host-packages.txt" in problems[0]


def test_every_package_the_scripts_need_is_load_bearing(
    extraction: Extraction, providers: dict[str, Provider]
) -> None:
    """Removing any manifest package that provides a script's command is reported."""
    manifest = manifest_packages()
    needed: dict[str, set[str]] = {}
    for name, provider in providers.items():
        if name in EXCEPTIONS or provider.base:
            continue
        for package in set(provider.packages) & set(manifest):
            needed.setdefault(package, set()).add(name)
    assert set(needed) >= {"debootstrap", "ipset", "containerd", "runc", "iproute2", "procps"}
    for package, commands in sorted(needed.items()):
        problems = check(extraction.calls, [p for p in manifest if p != package], providers)
        for command in commands:
            assert any(f"`{command}`" in p for p in problems), (package, command, problems)


def test_a_command_that_resolves_to_nothing_fails_with_what_to_do() -> None:
    call = Call("scripts/cluster/up.sh", 7, "sophia-no-such-command")
    [problem] = check([call], manifest_packages())
    assert "scripts/cluster/up.sh:7" in problem
    assert "`sophia-no-such-command`" in problem
    assert "not installed on this machine" in problem
    assert "scripts/host-packages.txt" in problem


def test_exceptions_are_used_and_explained(extraction: Extraction) -> None:
    found = extraction.names()
    for name, reason in EXCEPTIONS.items():
        assert name in found, f"exception `{name}` is no longer used by a script: remove it"
        assert len(reason) > 20, f"exception `{name}` needs a reason"
    assert not set(EXCEPTIONS) & set(manifest_packages()), "an exception is in the manifest"
    assert MANIFEST.is_file()
