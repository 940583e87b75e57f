"""Fixtures of the loopback harness: a set factory that always tears down what it started."""

from __future__ import annotations

import itertools
import os
import signal
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from components.settings import RedisSettings, load_settings
from redistest.engines import ENGINE_IMAGE_KEYS, default_engine, engine_config
from tests.harness import FAKE_PASSWORD, stack_config

from .loopback import HarnessError, LoopbackSet, require_host, sweep

_SUBNETS_PER_WORKER = 40
_next_subnet = itertools.count()


def _subnet() -> int:
    """127.0.<subnet>.0/24 per set, distinct across pytest-xdist workers."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    return 10 + int(worker or 0) * _SUBNETS_PER_WORKER + next(_next_subnet) % _SUBNETS_PER_WORKER


_engine = {"id": default_engine()}


def local_settings(**overrides: object) -> RedisSettings:
    """The local stack's settings (what the integration suite deploys) on the engine of the
    running test, with overrides."""
    config = dict(stack_config("local"))
    config.update(engine_config(_engine["id"]))
    config.update({f"redis:{key}": str(value) for key, value in overrides.items()})
    return load_settings(config)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Every test runs on the local stack's engine; those marked ``every_engine`` also on each
    other engine of the local images."""
    if "engine" not in metafunc.fixturenames:
        return
    marked = metafunc.definition.get_closest_marker("every_engine") is not None
    engines = list(ENGINE_IMAGE_KEYS) if marked else [default_engine()]
    metafunc.parametrize("engine", engines, indirect=True)


@pytest.fixture(autouse=True)
def engine(request: pytest.FixtureRequest) -> Iterator[str]:
    """The engine id the test runs on; local_settings() builds settings for it."""
    engine_id = getattr(request, "param", default_engine())
    _engine["id"] = engine_id
    try:
        yield engine_id
    finally:
        _engine["id"] = default_engine()


def pytest_configure(config: pytest.Config) -> None:
    """Before any set starts (in the xdist controller, or the only process): kill what an
    interrupted run left. In every process, SIGTERM ends the run through pytest's tear-down,
    so the sets are closed as on a failure."""
    config.addinivalue_line(
        "markers", "every_engine: runs on every engine of the local images, not only the default"
    )
    if not hasattr(config, "workerinput") and os.geteuid() == 0:
        sweep()
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))


@pytest.fixture(scope="session", autouse=True)
def _host() -> None:
    try:
        require_host()
    except HarnessError as error:
        pytest.fail(str(error), pytrace=False)


LoopbackFactory = Callable[..., LoopbackSet]


@pytest.fixture
def loopback(tmp_path: Path) -> Iterator[LoopbackFactory]:
    """``loopback(settings=None, **kwargs)`` builds a set; every set is closed afterwards."""
    made: list[LoopbackSet] = []

    def make(settings: RedisSettings | None = None, **kwargs: object) -> LoopbackSet:
        cluster = LoopbackSet(
            tmp_path / f"set{len(made)}",
            _subnet(),
            settings or local_settings(),
            kwargs.pop("password", FAKE_PASSWORD),  # type: ignore[arg-type]
            **kwargs,  # type: ignore[arg-type]
        )
        made.append(cluster)
        return cluster

    try:
        yield make
    finally:
        for cluster in made:
            cluster.close()
