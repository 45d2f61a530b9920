# One entry point for people and CI. Every target bootstraps the virtualenv it needs.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STACK ?= homelab
STACKS := $(patsubst Pulumi.%.yaml,%,$(wildcard Pulumi.*.yaml))
STATE ?= $(CURDIR)/.pulumi-state

.PHONY: venv preview render render-all check-render lint typecheck pytest test bench clean

$(VENV)/.installed: pyproject.toml requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

venv: $(VENV)/.installed

## preview: `pulumi preview` of STACK on a local file backend (needs the Pulumi CLI)
preview: venv
	@if ! command -v pulumi >/dev/null 2>&1; then \
	  echo "The Pulumi CLI is not installed. Install it (see https://www.pulumi.com/docs/install/," ; \
	  echo "e.g. 'curl -fsSL https://get.pulumi.com | sh'), then re-run 'make preview STACK=$(STACK)'." ; \
	  echo "Without it, 'make render STACK=$(STACK)' shows every resource, script and value offline." ; \
	  exit 3; \
	fi
	mkdir -p $(STATE)
	export PULUMI_BACKEND_URL="file://$(STATE)" PULUMI_CONFIG_PASSPHRASE="$${PULUMI_CONFIG_PASSPHRASE-}"; \
	  pulumi stack select --create $(STACK) && pulumi preview --stack $(STACK) --diff

## render: offline render of STACK into build/render/STACK (no Pulumi CLI needed)
render: venv
	$(PY) -m components.offline.render $(STACK)

render-all: venv
	@for s in $(STACKS); do $(PY) -m components.offline.render $$s || exit 1; done

## check-render: real tools on the rendered artefacts of every stack (shellcheck, CRD/values schemas)
check-render: render-all
	@scripts=$$(find build/render -name '*.sh' | sort); \
	  if [ -n "$$scripts" ]; then shellcheck -s bash $$scripts && echo "shellcheck: $$(echo "$$scripts" | wc -l) scripts clean"; fi
	@sources=$$(find components -path '*/sh/*.sh' | sort); \
	  if [ -n "$$sources" ]; then shellcheck -s bash $$sources && echo "shellcheck: $$(echo "$$sources" | wc -l) source files clean"; fi
	@if [ -d ../shared/reference ]; then \
	  for s in $(STACKS); do echo "conformance: $$s"; $(PY) -m tests.addons.schema build/render/$$s || exit 1; done; \
	else echo "conformance: skipped, ../shared/reference is not present"; fi

lint: venv
	$(VENV)/bin/ruff check components tests bench __main__.py

typecheck: venv
	$(VENV)/bin/mypy components __main__.py

pytest: venv
	$(PY) -m pytest -q

## test: everything CI runs (lint, types, tests, render checks)
test: lint typecheck pytest check-render

## bench: the benchmarks, each reporting ratios against a baseline measured in the same run
bench: venv
	@for b in bench/*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf build .pytest_cache .mypy_cache .ruff_cache
