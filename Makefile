# Two commands do all set-up on a fresh machine (Python 3.11 and make are all they need):
#   make run    the service on the embedded default; it processes the bundled sample PDF
#               end to end through the HTTP API, then keeps serving on http://127.0.0.1:8000
#   make test   the whole suite: lint, typecheck, tests, examples
PYTHON ?= python3
BOOT := .venv-nox
RUN := .venv

$(BOOT)/bin/nox:
	$(PYTHON) -m venv $(BOOT)
	$(BOOT)/bin/pip install --quiet --upgrade pip nox

$(RUN)/bin/jobkit: pyproject.toml
	$(PYTHON) -m venv $(RUN)
	$(RUN)/bin/pip install --quiet --upgrade pip
	$(RUN)/bin/pip install --quiet -e '.[http]'
	touch $@

.PHONY: run
run: $(RUN)/bin/jobkit
	$(RUN)/bin/jobkit serve --demo

.PHONY: test
test: $(BOOT)/bin/nox
	$(BOOT)/bin/nox

.PHONY: bench
bench: $(RUN)/bin/jobkit
	$(RUN)/bin/python benchmarks/core.py
	$(RUN)/bin/python benchmarks/queue.py
