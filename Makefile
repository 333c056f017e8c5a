# One entry point for install, reproduce, test, report and docker.
#   make reproduce [PAPER=<slug>|all] [CONFIG=smoke|small|paper] [ARGS="key=value ..."]
#   make test
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# The local CPU build on a CPU machine; on a Linux GPU machine the same pin pulls the CUDA
# build from PyPI. Another build: make install TORCH_SPEC="torch==2.13.0 --index-url ..."
TORCH_SPEC ?= torch==2.13.0
PAPER ?= all
CONFIG ?= small
ARGS ?=
IMAGE ?= repro2024
PAPERS := $(sort $(patsubst papers/%/__main__.py,%,$(wildcard papers/*/__main__.py)))
# A paper with a WIP file (work in progress: no small config or results yet) is left out of
# PAPER=all; PAPER=<slug> still runs it.
WIP := $(patsubst papers/%/WIP,%,$(wildcard papers/*/WIP))
SELECTED := $(if $(filter all,$(PAPER)),$(filter-out $(WIP),$(PAPERS)),$(PAPER))

ifneq ($(filter-out all $(PAPERS),$(PAPER)),)
$(error unknown PAPER '$(PAPER)'; valid papers: $(PAPERS) (or all))
endif

export HF_HUB_OFFLINE := 1

.PHONY: help install test lint reproduce report runs bench gpu-check docker-build docker-run clean-venv

help: ## list targets and papers
	@echo "targets:"
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | sed 's/^/  /'
	@echo "papers (PAPER=...): $(PAPERS)$(if $(WIP), (in progress, not in all: $(WIP)))"
	@echo "configs (CONFIG=...): smoke, small (default), paper"

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet "$(TORCH_SPEC)"
	$(VENV)/bin/pip install --quiet -e ".[dev]"
	touch $@

install: $(VENV)/.installed ## create .venv with every dependency (idempotent)

test: install ## run the whole test suite (two pytest-xdist workers, one test folder at a time each)
	$(PY) -m pytest -n 2

lint: install ## ruff over the code
	$(VENV)/bin/ruff check shared papers tests

reproduce: install ## run PAPER (default all) at CONFIG (default small), then the report
	@set -e; for p in $(SELECTED); do \
	  echo "== $$p ($(CONFIG)) =="; \
	  $(PY) -m papers.$$p reproduce --config $(CONFIG) $(ARGS); \
	done
	$(PY) -m shared.report --config $(CONFIG)

report: install ## build runs/REPORT.md from each paper's latest results
	$(PY) -m shared.report --config $(CONFIG)

runs: install ## list runs: paper, config, method, seed, state (finished/running/dead), age
	$(PY) -m shared.runs list

bench: install ## benchmarks of PAPER (default all)
	@set -e; for p in $(SELECTED); do \
	  if [ -f papers/$$p/benchmark.py ]; then $(PY) -m papers.$$p.benchmark; fi; \
	done

gpu-check: install ## the prepared GPU check: a few hundred paper-size steps per paper -> runs/gpu_check.json
	$(PY) -m shared.gpu_check --size paper --out runs/gpu_check.json

docker-build: ## build the CUDA image (needs a Docker engine)
	docker build -f docker/Dockerfile -t $(IMAGE) .

docker-run: ## make reproduce inside the image, runs/ mounted from here
	docker run --rm --gpus all -v "$(CURDIR)/runs:/app/runs" $(IMAGE) \
	  make reproduce PAPER=$(PAPER) CONFIG=$(CONFIG) ARGS="$(ARGS)"

clean-venv: ## remove .venv
	rm -rf $(VENV)
