# The developer interface; CI (.ci/run) uses the same targets.
SHELL := bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
export ATTEST_TOOLS_DIR ?= $(HOME)/.cache/attest-tools
# Select tests with T=, e.g. make test T=tests/unit
T ?= tests

.PHONY: dev lint reformat test demo bench tools system-packages requirements clean

dev: $(VENV)/.installed tools system-packages

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet --editable '.[dev]'
	touch $@

tools:
	bash scripts/install-tools.sh

system-packages:
	bash scripts/install-system-packages.sh

lint: $(VENV)/.installed
	$(VENV)/bin/ruff format --check attest tests scripts bench entrypoint.py
	$(VENV)/bin/ruff check attest tests scripts bench entrypoint.py
	$(VENV)/bin/mypy
	$(VENV)/bin/hadolint Dockerfile

reformat: $(VENV)/.installed
	$(VENV)/bin/ruff format attest tests scripts bench entrypoint.py
	$(VENV)/bin/ruff check --fix attest tests scripts bench entrypoint.py

test: dev
	$(PY) -m pytest $(T)

demo: dev
	$(PY) scripts/demo.py

# Side by side with the peers; the numbers go into docs/benchmarks.md.
bench: dev
	$(PY) bench/registry.py
	$(PY) bench/signing.py
	$(PY) bench/subjects.py

# The image's hashed runtime requirements, for Linux x86_64 and aarch64 alike.
requirements: $(VENV)/.installed
	$(VENV)/bin/uv pip compile requirements/runtime.in --generate-hashes --python-version 3.11 \
		--python-platform x86_64-manylinux_2_28 --no-header --quiet -o requirements/runtime.txt

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
