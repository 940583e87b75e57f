# make up    — set up every tool, start the local cluster, deploy the local stack
# make test  — every test: lint, unit, policy, ESC, then integration on the local cluster
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

.PHONY: help up down test unit integration bench lint tools venv cluster cluster-build cluster-down

help:
	@sed -n 's/^# make /make /p' $(MAKEFILE_LIST)

$(VENV)/.installed: requirements.txt requirements-dev.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

venv: $(VENV)/.installed

tools: venv
	scripts/install-host-packages.sh
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

unit: tools
	$(PYTEST) tests/unit tests/policy

integration: tools cluster-build
	$(PYTEST) tests/integration

test: tools cluster-build
	$(PYTEST) tests

bench: tools cluster-build
	$(PYTHON) -m bench

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy .
