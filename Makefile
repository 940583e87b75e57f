# make up    — set up every tool, start the local cluster, deploy the local stack
# make test  — every test: lint, unit, policy, ESC, pod scripts on loopback, integration on the local cluster
# make down  — destroy the local stack and stop the cluster
# make bench — failover, persistence and throughput benchmarks into bench/results.json
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

export SOPHIA_CACHE ?= $(HOME)/.cache/sophia-redis
STACK ?= local
VENV := .venv
PYTHON := $(VENV)/bin/python
PYTEST := $(PYTHON) -m pytest

.PHONY: help up down test unit scripts-harness integration bench lint tools venv host-packages cluster cluster-build cluster-down

help:
	@sed -n 's/^# make /make /p' $(MAKEFILE_LIST)

# Every Debian package of scripts/host-packages.txt, in one step, before anything uses one.
host-packages:
	scripts/install-host-packages.sh

$(VENV)/.installed: requirements.txt requirements-dev.txt | host-packages
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

venv: $(VENV)/.installed

tools: host-packages venv
	scripts/bootstrap-tools.sh
	scripts/build-esc-eval.sh

cluster-build:
	scripts/cluster/build.sh
	scripts/cluster/images.sh

cluster: cluster-build
	scripts/cluster/up.sh

up: tools cluster
	$(PYTHON) -m automation up $(STACK)

down: venv
	if [ -x "$(SOPHIA_CACHE)/bin/pulumi" ] && "$(SOPHIA_CACHE)/bin/kubectl" \
		--kubeconfig "$(SOPHIA_CACHE)/cluster/kubeconfig" get --raw=/readyz >/dev/null 2>&1; then \
		$(PYTHON) -m automation destroy $(STACK); fi
	scripts/cluster/down.sh

unit: tools cluster-build
	$(PYTEST) tests/unit tests/policy

# The pod scripts against real redis-server/redis-sentinel processes on 127.0.N.0/24, six
# independent cases at a time (each on its own address range): they mostly wait on Sentinel
# timers, so six keep 2 cores busy where four left half of them idle (7.4 -> 5.2 minutes).
scripts-harness: tools cluster-build
	$(PYTEST) -n 6 tests/scripts

integration: tools cluster-build
	$(PYTEST) --durations=20 tests/integration

test: tools cluster-build
	$(PYTEST) tests/unit tests/policy
	$(PYTEST) -n 6 tests/scripts
	$(PYTEST) --durations=20 tests/integration

# make bench BENCH_ARGS="--engine redis-8.0 --runs 5": any option of `python -m bench --help`.
bench: tools cluster-build
	$(PYTHON) -m bench $(BENCH_ARGS)

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy .
