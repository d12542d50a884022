# earmark: two commands on a fresh Debian machine (as root): `make demo`, `make test`.
SHELL := /bin/bash
VENV  := .venv
PY    := $(VENV)/bin/python

.PHONY: demo test bench lint bootstrap clean

# bootstrap is idempotent and takes well under a second when nothing is missing.
bootstrap:
	scripts/bootstrap

demo: bootstrap
	$(VENV)/bin/earmark demo

test: bootstrap
	$(PY) -m pytest -q tests

bench: bootstrap
	scripts/bootstrap --extra bench
	$(PY) bench/meters.py

lint: bootstrap
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
	find . -name __pycache__ -prune -exec rm -rf {} +
