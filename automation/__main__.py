"""``python -m automation up|preview|destroy|outputs [STACK]``: what make up/down run."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping

from pulumi import automation as auto

from .workspace import ToolsMissing, Workspace


def print_outputs(outputs: Mapping[str, auto.OutputValue]) -> None:
    for name, output in sorted(outputs.items()):
        shown = "[secret]" if output.secret else output.value
        print(f"  {name}: {shown}")


def watch_with_local_prometheus(stack: auto.Stack) -> None:
    """Deploys the local cluster's Prometheus with the local release's scrape jobs and rules."""
    from redistest.monitoring import deploy_prometheus, stack_settings

    prometheus = deploy_prometheus([stack_settings(stack)])
    print(
        f"\nPrometheus scrapes the release and evaluates its alert rules: {prometheus.base}"
        " (from this host; /alerts, /targets)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m automation", description=__doc__)
    parser.add_argument("action", choices=["up", "preview", "destroy", "outputs"])
    parser.add_argument("stack", nargs="?", default="local")
    args = parser.parse_args(argv)
    try:
        stack = Workspace().stack(args.stack)
    except ToolsMissing as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.action == "up":
        # A cluster started afresh no longer holds what the state remembers: reconcile first.
        stack.refresh(on_output=print, color="never")
        result = stack.up(on_output=print, color="never")
        print(f"\nstack {args.stack} is up; outputs:")
        print_outputs(result.outputs)
        if args.stack == "local":
            watch_with_local_prometheus(stack)
        print(
            "\nReach Redis from a pod labelled 'redis-client=true' with the secret URL:\n"
            f"  python -m automation outputs {args.stack}  # names only;"
            " 'pulumi stack output redis_url --show-secrets' reveals it"
        )
    elif args.action == "preview":
        preview = stack.preview(on_output=print, color="never")
        print(f"changes: {preview.change_summary}")
    elif args.action == "destroy":
        stack.destroy(on_output=print, color="never")
    else:
        print_outputs(stack.outputs())
    return 0


if __name__ == "__main__":
    sys.exit(main())
