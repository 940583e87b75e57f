"""Runs the Pulumi program under mocks and records every resource it registers."""

from __future__ import annotations

import base64
import json
import re
import runpy
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import yaml
from pulumi.runtime import rpc
from pulumi.runtime import settings as pulumi_settings
from pulumi.runtime.mocks import MockMonitor

from components import migration
from components.engines import Deployment as EngineDeployment

REPO = Path(__file__).resolve().parent.parent
PROJECT = "sophia-redis"
FAKE_PASSWORD = "Fake-Pa55word!*+_for.tests~0123456789abcd"


def fake_password_result(resource_name: str) -> str:
    """What the mocks make a RandomPassword: FAKE_PASSWORD for the application's generations,
    a distinct value for every internal role's, so a leak of one can be told apart."""
    if re.search(r"-password-v[0-9]+$", resource_name):
        return FAKE_PASSWORD
    return f"Fake-{resource_name}-Pa55word!*+~0123456789"


def stack_config(stack: str, commit: str | None = None) -> dict[str, str]:
    """The config of ``Pulumi.<stack>.yaml`` (as of ``commit``, when given: the keys that
    release knew) as the engine hands it over: structured values JSON-encoded, everything else
    a string."""
    name = f"Pulumi.{stack}.yaml"
    if commit is None:
        text = (REPO / name).read_text()
    else:
        text = subprocess.run(
            ["git", "-C", str(REPO), "show", f"{commit}:{name}"],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout
    document = yaml.safe_load(text)
    config: dict[str, str] = {}
    for key, value in (document.get("config") or {}).items():
        config[key] = value if isinstance(value, str) else json.dumps(value)
    return config


@dataclass
class Registered:
    """One resource the program registered."""

    type: str
    name: str
    inputs: dict[str, Any]
    options: Any


@dataclass(frozen=True)
class Registration:
    """What the engine would know of one resource: its URN, its parent's and its aliases'."""

    urn: str
    parent: str
    """URN of the parent; empty for the stack."""
    aliases: tuple[str, ...]
    """The URNs the alias specs stand for, resolved as the engine does."""


@dataclass
class Deployment:
    """What one run of the program registered and exported."""

    resources: list[Registered] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)
    raw_outputs: dict[str, Any] = field(default_factory=dict)
    options: dict[tuple[str, str], pulumi.ResourceOptions] = field(default_factory=dict)
    """Resource options by (type, name), as the program passed them."""
    registrations: dict[tuple[str, str], Registration] = field(default_factory=dict)
    """URNs by (type, name), as the mock monitor saw them."""
    reads: list[tuple[str, str]] = field(default_factory=list)
    """(type, ID) of every existing object the program read (``Resource.get``)."""

    def of_type(self, resource_type: str) -> list[Registered]:
        return [r for r in self.resources if r.type == resource_type]

    def one(self, resource_type: str, name: str | None = None) -> Registered:
        matches = [
            r
            for r in self.of_type(resource_type)
            if name is None or r.inputs.get("metadata", {}).get("name") == name
        ]
        assert len(matches) == 1, f"expected one {resource_type} {name or ''}, found {len(matches)}"
        return matches[0]


def reveal(value: Any) -> Any:
    """``value`` with the engine's secret wrappers replaced by what they wrap."""
    if isinstance(value, dict):
        if value.get(rpc._special_sig_key) == rpc._special_secret_sig:
            return reveal(value["value"])
        return {k: reveal(v) for k, v in value.items()}
    if isinstance(value, list):
        return [reveal(v) for v in value]
    return value


ROOT_STACK_TYPE = "pulumi:pulumi:Stack"


class RecordingMonitor(MockMonitor):
    """The mock monitor, making URNs as the engine does (the parent's whole type chain, the
    stack left out) and recording each resource's URN, parent and aliases."""

    def __init__(self, mocks: pulumi.runtime.Mocks, deployment: Deployment) -> None:
        super().__init__(mocks)
        self.deployment = deployment

    def make_urn(self, parent: str, type_: str, name: str) -> str:
        if parent:
            parent_type = parent.split("::")[2]
            if parent_type != ROOT_STACK_TYPE:
                type_ = f"{parent_type}${type_}"
        return "::".join([f"urn:pulumi:{pulumi.get_stack()}", pulumi.get_project(), type_, name])

    def alias_urn(self, alias: Any, type_: str, name: str, parent: str) -> str:
        """The URN an ``alias_pb2.Alias`` of a resource stands for; what a spec leaves unset
        is the resource's own, as in the engine."""
        if alias.WhichOneof("alias") == "urn":
            return str(alias.urn)
        spec = alias.spec
        assert not spec.stack and not spec.project, "aliases across stacks are not modelled"
        spec_parent = "" if spec.noParent else (spec.parentUrn or parent)
        return self.make_urn(spec_parent, spec.type or type_, spec.name or name)

    def RegisterResource(self, request: Any) -> Any:
        response = super().RegisterResource(request)  # type: ignore[no-untyped-call]
        self.deployment.registrations[(request.type, request.name)] = Registration(
            urn=response.urn,
            parent=request.parent,
            aliases=tuple(
                self.alias_urn(alias, request.type, request.name, request.parent)
                for alias in request.aliases
            ),
        )
        return response


class RecordingMocks(pulumi.runtime.Mocks):
    """Mocks that echo inputs back as outputs and give RandomPassword a fixed result."""

    def __init__(self, deployment: Deployment) -> None:
        self.deployment = deployment

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        if args.typ == "kubernetes:core/v1:Secret" and args.resource_id:
            # A read of the certificate Secret cert-manager writes.
            self.deployment.reads.append((args.typ, str(args.resource_id)))
            ca = base64.b64encode(FAKE_CA_CERTIFICATE.encode()).decode()
            return str(args.resource_id), {"data": {"ca.crt": ca}}
        self.deployment.resources.append(
            Registered(
                args.typ, args.name, reveal(dict(args.inputs)), getattr(args, "custom", None)
            )
        )
        outputs = dict(args.inputs)
        if args.typ == "random:index/randomPassword:RandomPassword":
            outputs["result"] = fake_password_result(args.name)
        return f"{args.name}-id", outputs

    def call(
        self, args: pulumi.runtime.MockCallArgs
    ) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        return {}, None


FAKE_CA_CERTIFICATE = "-----BEGIN CERTIFICATE-----\nZmFrZQ==\n-----END CERTIFICATE-----\n"
"""``ca.crt`` of the certificate Secret under mocks."""


def run_program(
    config: dict[str, str], stack: str = "dev", running: EngineDeployment | None = None
) -> Deployment:
    """Runs ``__main__.py`` with ``config`` under mocks, as if the cluster ran ``running`` (no
    release when None); returns resources and stack outputs."""
    deployment = Deployment()
    # A fresh root stack per run, so stack transformations of earlier runs don't linger.
    pulumi_settings.ROOT.set(None)
    mocks = RecordingMocks(deployment)
    pulumi.runtime.set_mocks(
        mocks,
        project=PROJECT,
        stack=stack,
        preview=False,
        monitor=RecordingMonitor(mocks, deployment),
    )
    pulumi.runtime.set_all_config(dict(config))

    exports = deployment.raw_outputs

    def record_options(
        args: pulumi.ResourceTransformationArgs,
    ) -> pulumi.ResourceTransformationResult:
        deployment.options[(args.type_, args.name)] = args.opts
        return pulumi.ResourceTransformationResult(args.props, args.opts)

    @pulumi.runtime.test
    def program() -> pulumi.Output[Any]:
        pulumi.runtime.register_stack_transformation(record_options)
        original_export = pulumi.export
        original_reader = migration.read_running_deployment
        pulumi.export = lambda name, value: exports.__setitem__(name, value)
        migration.read_running_deployment = lambda settings: running
        try:
            runpy.run_path(str(REPO / "__main__.py"), run_name="__main__")
        finally:
            pulumi.export = original_export
            migration.read_running_deployment = original_reader
        return pulumi.Output.all(**exports).apply(deployment.outputs.update)

    program()
    return deployment
