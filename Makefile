# r4b-verl: `make help` lists the targets and their variables.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=
# Extra pip arguments for the torch install, e.g. a CPU wheel index on machines without a local one.
TORCH_PIP_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help install test bench bench-advantage bench-rewards

help: ## list targets and variables
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'
	@echo "Variables: PYTHON=$(PYTHON) VENV=$(VENV) TORCH_PIP_ARGS='$(TORCH_PIP_ARGS)' PYTEST_ARGS='$(PYTEST_ARGS)'"

install: ## CPU install into $(VENV): torch 2.13.0 (CPU) first, then the plugin (editable) with verl 0.9.1
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --upgrade pip
	$(VENV)/bin/pip install $(TORCH_PIP_ARGS) torch==2.13.0
	$(VENV)/bin/pip install -e '.[test]' --config-settings editable_mode=compat

test: ## run the CPU test suite (tests/**/test_*_on_cpu.py)
	$(PY) -m pytest --import-mode=importlib tests $(PYTEST_ARGS)

bench: bench-advantage bench-rewards ## run all benchmarks

bench-advantage: ## time bpo against verl's grpo and grpo_vectorized
	$(PY) benchmarks/bench_advantage.py

bench-rewards: ## responses/s of reward_fns vs verl's math-verify wrapper
	$(PY) benchmarks/bench_rewards.py
