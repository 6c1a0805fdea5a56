# Two entry points that work on a fresh machine: `make demo` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
# A CPU machine takes the local CPU wheel; GPU users may set TORCH_SPEC to their build.
TORCH_SPEC ?= torch==2.13.0
STAMP := $(VENV)/.installed
# Test processes (pytest-xdist), a file to each: most tests wait on loopback servers and
# child processes, so two share even a 2-core machine well. PYTEST_WORKERS=0: one process.
PYTEST_WORKERS ?= 2

.PHONY: install demo test lint typecheck pytest bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch first, so the `torch>=2.6,<3` range below is already satisfied.
	$(PY) -m pip install -q $(TORCH_SPEC)
	$(PY) -m pip install -q -e ".[render,test]"
	touch $(STAMP)

demo: install
	HF_HUB_OFFLINE=1 $(VENV)/bin/storyloom render examples/lighthouse.toml \
		--model tiny-sdxl --out storyloom-out/demo

lint: install
	$(VENV)/bin/ruff check storyloom tests benchmarks
	$(VENV)/bin/ruff format --check storyloom tests benchmarks

typecheck: install
	$(VENV)/bin/mypy

pytest: install
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q -p no:cacheprovider -n $(PYTEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

test: lint typecheck pytest

bench: install
	HF_HUB_OFFLINE=1 $(PY) benchmarks/attention.py --json storyloom-out/bench/attention.json

clean:
	rm -rf $(VENV) storyloom-out storyloom-data .mypy_cache .ruff_cache
