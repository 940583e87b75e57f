"""The ESC environment document, evaluated by the real ESC evaluator (esc-eval).

esc-eval is built by ``scripts/build-esc-eval.sh`` (part of ``make tools``). When it is
missing these tests fail rather than skip: an unevaluated document proves nothing.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import pytest
import yaml

from components.esc import (
    SECRET_CONFIG_KEYS,
    SECRET_ENVIRONMENT_VARIABLES,
    SECRET_VALUE_PATHS,
    build_environment_document,
    environment_name,
    escape_literal,
    format_redis_url,
    render_environment_yaml,
)
from tests.harness import FAKE_PASSWORD, run_program, stack_config

REPO = Path(__file__).resolve().parents[2]
ESC_DIR = REPO / "esc"

PASSWORD = "p@ss:w/rd#?%25&=+ ${HOME} $$x $"
"""URL-special characters, a percent-encoding look-alike and ESC interpolation syntax."""

SENTINELS = tuple(
    f"redis-node-{i}.redis-headless.redis-{{stack}}.svc.cluster.local:26379" for i in range(3)
)


def find_esc_eval() -> Path:
    """Return the esc-eval binary from PATH or the tool cache, failing the test if absent."""
    on_path = shutil.which("esc-eval")
    if on_path:
        return Path(on_path)
    cache = Path(os.environ.get("SOPHIA_CACHE") or Path.home() / ".cache" / "sophia-redis")
    candidate = cache / "bin" / "esc-eval"
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return candidate
    pytest.fail(
        f"esc-eval not found on PATH nor at {candidate}: run `make tools` "
        "(or scripts/build-esc-eval.sh) to build it",
        pytrace=False,
    )


@pytest.fixture(scope="module")
def esc_eval() -> Path:
    return find_esc_eval()


def make_document(stack: str, password: str = PASSWORD) -> dict[str, Any]:
    """The document the Redis stack ``stack`` would publish."""
    host = f"redis.redis-{stack}.svc.cluster.local"
    return build_environment_document(
        redis_url=format_redis_url(password=password, host=host, port=6379),
        redis_password=password,
        redis_host=host,
        redis_port=6379,
        sentinel_hosts=[s.format(stack=stack) for s in SENTINELS],
        sentinel_master_name="mymaster",
        namespace=f"redis-{stack}",
    )


def write_document(tmp_path: Path, stack: str, doc: Mapping[str, Any] | None = None) -> Path:
    path = tmp_path / f"redis-{stack}.yaml"
    path.write_text(render_environment_yaml(doc if doc is not None else make_document(stack)))
    return path


def run_esc_eval(binary: Path, *args: str, expect: int = 0) -> dict[str, Any]:
    """Run esc-eval, check its exit status and return the decoded report."""
    proc = subprocess.run(
        [str(binary), *args], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == expect, (
        f"esc-eval {args} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    )
    report: dict[str, Any] = json.loads(proc.stdout)
    report["_stdout"] = proc.stdout
    return report


def environment(report: Mapping[str, Any], name: str) -> dict[str, Any]:
    for env in report["environments"]:
        if env["name"] == name:
            return dict(env)
    raise AssertionError(f"{name} not in report: {[e['name'] for e in report['environments']]}")


def walk(node: Mapping[str, Any], path: str = "") -> Iterator[tuple[str, Mapping[str, Any]]]:
    """Yield (dotted path, rendered value) for every value of an esc-eval value tree."""
    yield path, node
    inner = node.get("value")
    if isinstance(inner, dict):
        for key, child in inner.items():
            yield from walk(child, f"{path}.{key}" if path else key)
    elif isinstance(inner, list):
        for i, child in enumerate(inner):
            yield from walk(child, f"{path}[{i}]")


def plain(node: Mapping[str, Any]) -> Any:
    """Strip the secret/unknown markers from a rendered value."""
    inner = node.get("value")
    if isinstance(inner, dict):
        return {k: plain(v) for k, v in inner.items()}
    if isinstance(inner, list):
        return [plain(v) for v in inner]
    return inner


def test_document_evaluates_with_every_reference_resolved(esc_eval: Path, tmp_path: Path) -> None:
    path = write_document(tmp_path, "prod")
    report = run_esc_eval(esc_eval, "--reveal", f"redis/prod={path}")
    env = environment(report, "redis/prod")

    assert report["ok"] and env["diagnostics"] == []
    values = {k: v for k, v in env["values"].items()}
    unknown = [
        p for key, root in values.items() for p, node in walk(root, key) if node.get("unknown")
    ]
    assert unknown == [], f"unresolved values: {unknown}"

    redis = plain(values["redis"])
    assert redis["password"] == PASSWORD, "ESC interpolation changed the password"
    url = redis["url"]
    parts = urlsplit(url)
    assert parts.hostname == "redis.redis-prod.svc.cluster.local" and parts.port == 6379
    assert parts.password == quote(PASSWORD, safe="")
    assert redis["sentinel"]["hosts"] == [s.format(stack="prod") for s in SENTINELS]

    variables = env["environmentVariables"]
    assert variables["REDIS_URL"]["value"] == url
    assert variables["REDIS_PASSWORD"]["value"] == PASSWORD
    assert variables["REDIS_SENTINEL_HOSTS"]["value"] == ",".join(redis["sentinel"]["hosts"])
    assert variables["REDIS_SENTINEL_MASTER"]["value"] == "mymaster"
    assert variables["REDIS_PORT"]["value"] == "6379"

    config = {k: plain(v) for k, v in env["pulumiConfig"].items()}
    assert config["redis:url"] == url
    assert config["redis:sentinelHosts"] == redis["sentinel"]["hosts"]
    assert config["redis:namespace"] == "redis-prod"


def test_url_and_password_are_secret_everywhere(esc_eval: Path, tmp_path: Path) -> None:
    path = write_document(tmp_path, "prod")
    report = run_esc_eval(esc_eval, f"redis/prod={path}")
    env = environment(report, "redis/prod")

    expected = (
        set(SECRET_VALUE_PATHS)
        | {f"environmentVariables.{v}" for v in SECRET_ENVIRONMENT_VARIABLES}
        | {f"pulumiConfig.{k}" for k in SECRET_CONFIG_KEYS}
    )
    assert expected <= set(env["secretPaths"])
    assert {"environmentVariables.REDIS_URL", "environmentVariables.REDIS_PASSWORD"} <= expected
    for name in ("REDIS_URL", "REDIS_PASSWORD"):
        assert env["environmentVariables"][name] == {"value": "[secret]", "secret": True}
    assert not env["environmentVariables"]["REDIS_HOST"].get("secret")
    assert "redis.host" not in env["secretPaths"]
    for leaked in (PASSWORD, quote(PASSWORD, safe=""), json.dumps(PASSWORD)[1:-1]):
        assert leaked not in report["_stdout"], "secret plaintext printed without --reveal"


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_example_app_environment_evaluates_against_the_document(
    esc_eval: Path, tmp_path: Path, stack: str
) -> None:
    redis = write_document(tmp_path, stack)
    app = ESC_DIR / "examples" / f"app-{stack}.yaml"
    imports = yaml.safe_load(app.read_text())["imports"]
    assert environment_name("redis", stack) in imports

    report = run_esc_eval(
        esc_eval, "--reveal", f"--import=redis/{stack}={redis}", f"app/{stack}={app}"
    )
    env = environment(report, f"app/{stack}")
    assert report["ok"] and env["diagnostics"] == []
    variables = env["environmentVariables"]
    assert variables["REDIS_URL"]["secret"] and variables["CACHE_URL"]["secret"]
    assert variables["CACHE_URL"]["value"] == variables["REDIS_URL"]["value"]
    assert (
        urlsplit(variables["CACHE_URL"]["value"]).hostname
        == f"redis.redis-{stack}.svc.cluster.local"
    )
    assert env["pulumiConfig"]["redis:url"]["secret"]
    assert env["pulumiConfig"]["app:cacheUrl"]["secret"]


def test_app_stack_environment_list_resolves(esc_eval: Path, tmp_path: Path) -> None:
    stack_file = yaml.safe_load((ESC_DIR / "examples" / "Pulumi.app-prod.yaml").read_text())
    listed: Sequence[str] = stack_file["environment"]
    assert listed, "the example stack lists no environment"
    known = {
        "redis/prod": write_document(tmp_path, "prod"),
        "app/prod": ESC_DIR / "examples" / "app-prod.yaml",
    }
    assert set(listed) <= set(known), (
        f"unknown environments in Pulumi.app-prod.yaml: {set(listed) - set(known)}"
    )

    imports = [f"--import={name}={path}" for name, path in known.items()]
    report = run_esc_eval(esc_eval, *imports, *(f"{name}={known[name]}" for name in listed))
    assert report["ok"], report["_stdout"]
    config_keys = set().union(*(environment(report, name)["pulumiConfig"] for name in listed))
    assert {"redis:url", "redis:password", "redis:sentinelHosts"} <= config_keys
    overlap = config_keys & set(stack_file.get("config", {}))
    assert not overlap, f"stack config shadows environment config: {overlap}"


def test_example_document_matches_the_generator(esc_eval: Path) -> None:
    example = ESC_DIR / "redis-environment.example.yaml"
    fake = "FAKE-example-password-not-real"
    host = "redis.redis-prod.svc.cluster.local"
    expected = build_environment_document(
        redis_url=format_redis_url(password=fake, host=host, port=6379),
        redis_password=fake,
        redis_host=host,
        redis_port=6379,
        sentinel_hosts=[s.format(stack="prod") for s in SENTINELS],
        sentinel_master_name="mymaster",
        namespace="redis-prod",
    )
    assert yaml.safe_load(example.read_text()) == expected
    report = run_esc_eval(esc_eval, f"redis/prod={example}")
    assert report["ok"]


def test_broken_reference_is_reported(esc_eval: Path, tmp_path: Path) -> None:
    doc = make_document("prod")
    doc["values"]["environmentVariables"]["REDIS_URL"] = "${redis.uri}"
    path = write_document(tmp_path, "prod", doc)
    report = run_esc_eval(esc_eval, f"redis/prod={path}", expect=1)
    diags = environment(report, "redis/prod")["diagnostics"]
    assert not report["ok"]
    assert any(
        "uri" in d["summary"] and d["path"] == "values.environmentVariables.REDIS_URL"
        for d in diags
    ), diags


def test_missing_import_is_reported(esc_eval: Path) -> None:
    report = run_esc_eval(esc_eval, f"app/dev={ESC_DIR / 'examples' / 'app-dev.yaml'}", expect=1)
    diags = environment(report, "app/dev")["diagnostics"]
    assert any("redis/dev" in d["summary"] for d in diags), diags


def test_unescaped_dollar_would_have_been_interpolated(esc_eval: Path, tmp_path: Path) -> None:
    """Guards escape_literal: the same password written raw is read as a reference."""
    doc = make_document("dev")
    doc["values"]["redis"]["password"] = {"fn::secret": PASSWORD}
    path = write_document(tmp_path, "dev", doc)
    report = run_esc_eval(esc_eval, f"redis/dev={path}", expect=1)
    assert environment(report, "redis/dev")["diagnostics"]


def test_render_is_canonical() -> None:
    doc = make_document("dev")
    reordered = {"values": dict(reversed(list(doc["values"].items())))}
    assert render_environment_yaml(doc) == render_environment_yaml(reordered)
    assert yaml.safe_load(render_environment_yaml(doc)) == doc
    assert (
        "\n"
        not in yaml.safe_load(render_environment_yaml(doc))["values"]["redis"]["url"]["fn::secret"]
    )


def test_escape_literal() -> None:
    assert escape_literal("a${b}$$c$") == "a$${b}$$$$c$$"
    assert escape_literal("plain") == "plain"


def test_format_redis_url_encodes_credentials() -> None:
    url = format_redis_url(password=PASSWORD, host="h.example", port=6380, db=2, tls=True)
    parts = urlsplit(url)
    assert (
        parts.scheme == "rediss"
        and parts.hostname == "h.example"
        and parts.port == 6380
        and parts.path == "/2"
    )
    assert parts.password == quote(PASSWORD, safe="") and parts.username == ""


def test_environment_name() -> None:
    assert environment_name("redis", "prod") == "redis/prod"
    for bad in ("", "a/b", "with space"):
        with pytest.raises(ValueError):
            environment_name("redis", bad)
        with pytest.raises(ValueError):
            environment_name(bad, "prod")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"redis_url": "redis://:p@ss:w/rd@h:6379/0"}, "percent-encoded"),
        ({"redis_url": "redis://:other@h:6379/0"}, "percent-encoded"),
        ({"redis_url": "http://h:6379/0"}, "scheme"),
        ({"redis_url": "redis://h/0"}, "port"),
        ({"redis_password": ""}, "empty"),
        ({"redis_port": 0}, "port"),
        ({"sentinel_hosts": []}, "at least one"),
        ({"sentinel_hosts": ["no-port"]}, "host:port"),
        ({"sentinel_master_name": ""}, "sentinel_master_name"),
        ({"namespace": ""}, "namespace"),
    ],
)
def test_build_rejects_bad_input(change: dict[str, Any], message: str) -> None:
    args: dict[str, Any] = {
        "redis_url": format_redis_url(password="pw", host="h", port=6379),
        "redis_password": "pw",
        "redis_host": "h",
        "redis_port": 6379,
        "sentinel_hosts": ["s:26379"],
        "sentinel_master_name": "mymaster",
        "namespace": "ns",
    }
    args.update(change)
    if "redis_password" in change:
        args["redis_url"] = "redis://h:6379/0"
    with pytest.raises(ValueError, match=message):
        build_environment_document(**args)


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_program_publishes_an_environment_that_evaluates(
    esc_eval: Path, tmp_path: Path, stack: str
) -> None:
    """The document ``__main__.py`` hands to pulumiservice.Environment (under mocks)
    evaluates cleanly under its own name, and the example app environment imports it."""
    deployment = run_program(stack_config(stack), stack)
    published = deployment.one("pulumiservice:index:Environment").inputs
    name = environment_name(published["project"], published["name"])
    path = tmp_path / "published.yaml"
    path.write_text(published["yaml"].text)

    report = run_esc_eval(esc_eval, "--reveal", f"{name}={path}")
    env = environment(report, name)
    assert report["ok"], env["diagnostics"]
    assert plain(env["values"]["redis"])["password"] == FAKE_PASSWORD
    assert urlsplit(env["environmentVariables"]["REDIS_URL"]["value"]).password == quote(
        FAKE_PASSWORD, safe=""
    )
    assert {"redis.url", "redis.password", "environmentVariables.REDIS_URL"} <= set(
        env["secretPaths"]
    )

    if name == f"redis/{stack}":
        app = ESC_DIR / "examples" / f"app-{stack}.yaml"
        report = run_esc_eval(esc_eval, f"--import={name}={path}", f"app/{stack}={app}")
        assert report["ok"], report["_stdout"]


def test_tls_example_document_matches_the_generator(esc_eval: Path) -> None:
    example = ESC_DIR / "redis-environment-tls.example.yaml"
    fake = "FAKE-example-password-not-real"
    host = "redis-service.sophia-ai-prod.svc.cluster.local"
    ca = "-----BEGIN CERTIFICATE-----\nFAKE-example-CA-not-real\n-----END CERTIFICATE-----\n"
    expected = build_environment_document(
        redis_url=format_redis_url(password=fake, host=host, port=6380, tls=True),
        redis_password=fake,
        redis_host=host,
        redis_port=6380,
        sentinel_hosts=[
            f"redis-{i}.redis-headless.sophia-ai-prod.svc.cluster.local:26380" for i in range(3)
        ],
        sentinel_master_name="mymaster",
        namespace="sophia-ai-prod",
        tls_ca_certificate=ca,
    )
    assert yaml.safe_load(example.read_text()) == expected
    report = run_esc_eval(esc_eval, f"redis/prod={example}")
    assert report["ok"], report["_stdout"]
    evaluated = environment(report, "redis/prod")
    assert evaluated["environmentVariables"]["REDIS_TLS_CA_CERT"]["value"] == ca
    assert evaluated["pulumiConfig"]["redis:tlsCaCertificate"]["value"] == ca
