# Two commands do all the set-up on a fresh machine:
#   make reproduce   the study's protocol on the bundled data (creates .venv)
#   make test        lint, format check and the test suite (creates .venv)
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# The CPU build of torch; pip would otherwise fetch a multi-GB CUDA build.
TORCH_SPEC ?= torch==2.13.0

.PHONY: reproduce test test-fast lint format bench browser clean

$(VENV)/.base: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH_SPEC)"
	$(PY) -m pip install --quiet -e .
	$(PY) -m imbalanced_dp.engines._warmup
	touch $@

$(VENV)/.test: $(VENV)/.base
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

reproduce: $(VENV)/.base
	$(VENV)/bin/imbalanced-dp reproduce $(ARGS)

# Debian's Chromium renders report.html in the browser test; best effort (needs root/apt).
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	  { (apt-get install -y -qq chromium >/dev/null 2>&1 || \
	     (apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq chromium >/dev/null 2>&1)) \
	    || echo "note: could not install chromium; the browser test will be skipped"; }

lint: $(VENV)/.test
	$(VENV)/bin/ruff check src tests benchmarks examples
	$(VENV)/bin/ruff format --check src tests benchmarks examples

test: $(VENV)/.test browser lint
	$(VENV)/bin/pytest -m "not gpu" $(PYTEST_ARGS)

test-fast: $(VENV)/.test
	$(VENV)/bin/pytest -m "not slow and not gpu" $(PYTEST_ARGS)

format: $(VENV)/.test
	$(VENV)/bin/ruff format src tests benchmarks examples
	$(VENV)/bin/ruff check --fix src tests benchmarks examples

bench: $(VENV)/.test
	$(PY) benchmarks/engine_speed.py
	$(PY) benchmarks/engine_agreement.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache reproduce-results imbalanced-dp-results
