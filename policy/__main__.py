"""Entry point of the Redis policy pack: ``pulumi preview --policy-pack policy``.

Pulumi runs this directory as a program (``runpy.run_path``), so sibling modules import
as top-level modules. The rules live in :mod:`redis_policies`; this file only wires them
into a PolicyPack whose policies are all mandatory.
"""

from pulumi_policy import EnforcementLevel, PolicyPack
from redis_policies import build_policies

PolicyPack(
    name="sophia-redis",
    enforcement_level=EnforcementLevel.MANDATORY,
    policies=build_policies(),
)
