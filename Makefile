# Two commands do all set-up on a fresh machine (Python 3.11 is all they need):
#   make test   the whole suite: lint, typecheck, tests, examples
#   make run    the service on the embedded default (arrives with the HTTP service)
PYTHON ?= python3
BOOT := .venv-nox

$(BOOT)/bin/nox:
	$(PYTHON) -m venv $(BOOT)
	$(BOOT)/bin/pip install --quiet --upgrade pip nox

.PHONY: test
test: $(BOOT)/bin/nox
	$(BOOT)/bin/nox

.PHONY: bench
bench: $(BOOT)/bin/nox
	$(BOOT)/bin/nox -s tests -- --co -q >/dev/null
	.nox/tests/bin/python benchmarks/core.py
