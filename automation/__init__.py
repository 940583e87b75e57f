"""Drives the project's stacks through the Pulumi Automation API (make up/down, tests, bench)."""
