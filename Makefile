# Every target sets up what it needs, so `make demo` and `make test` work first on a fresh clone.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
BASE := checkpoints/base/me5-small-zh
EXAMPLE := examples/reports/000_9ab697e020cfd5b9.txt

.PHONY: setup demo test lint base studio-env clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch first, pinned: an unpinned torch would pull a multi-GB CUDA build.
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[train,studio,docs,dev]'
	touch $(STAMP)

lint: setup
	$(VENV)/bin/ruff check src tests scripts
	$(VENV)/bin/ruff format --check src tests scripts

demo: setup
	mkdir -p outputs
	$(VENV)/bin/sectioncls segment $(EXAMPLE) --format jsonl --output outputs/segments.jsonl
	$(VENV)/bin/sectioncls segment $(EXAMPLE) --format table | head -40
	@echo "Units written to outputs/segments.jsonl"

test: setup
	$(PY) -m pytest

clean:
	rm -rf $(VENV) outputs .pytest_cache
