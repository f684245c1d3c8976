# Everything sets itself up: `make demo` and `make test` on a fresh machine.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
# The demos' own venv: one framework and the package's dependencies (about 10 MB, seconds to make), not the dev tools.
DEMO_VENV ?= .venv-demo
DEMO_BIN  := $(DEMO_VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8000
# `make demo-asgi` defaults to 8001 so it can run next to `make demo`; PORT=... wins.
ASGI_PORT := $(if $(filter file,$(origin PORT)),8001,$(PORT))
EXTRAS := flask,django,asgi,starlette,fastapi,testing,dev
# Only the folders that exist (bench/ may not yet).
LINT_PATHS := $(wildcard hr_middleware tests examples bench .ci)

.PHONY: venv test lint demo demo-asgi screenshot bench bench-budget bench-transport bench-instructions bench-parts load throughput test-all test-compat test-django-versions dist-check clean

$(STAMP): setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[$(EXTRAS)]'
	touch $(STAMP)

venv: $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Only the directories that exist on this branch (bench/ may not yet).

lint: $(STAMP)
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/ruff format --check $(LINT_PATHS)
	$(BIN)/mypy --strict hr_middleware

# The demos' venv holds only what the package and one framework need (examples/requirements.py
# reads them from setup.cfg); the package runs from the checkout (`python -m examples...`), so
# nothing is built. The venv is made without pip and filled by this Python's pip (pip >= 22.3:
# --python), which saves seconds; with an older pip, the venv gets a pip of its own.
define demo_venv
	test -x $(DEMO_BIN)/python || $(PYTHON) -m venv --without-pip $(DEMO_VENV)
	if $(PYTHON) -m pip --python $(DEMO_BIN)/python --version >/dev/null 2>&1; then \
	  $(PYTHON) -m pip --python $(DEMO_BIN)/python install --quiet $$($(PYTHON) examples/requirements.py $(1)) $(2); \
	else \
	  $(DEMO_BIN)/python -m ensurepip --default-pip >/dev/null && \
	  $(DEMO_BIN)/python -m pip install --quiet $$($(PYTHON) examples/requirements.py $(1)) $(2); \
	fi
	touch $@
endef

$(DEMO_VENV)/.flask-stamp: setup.cfg pyproject.toml
	$(call demo_venv,flask)

$(DEMO_VENV)/.asgi-stamp: setup.cfg pyproject.toml
	$(call demo_venv,starlette,'uvicorn>=0.23')

# HOST=0.0.0.0 to reach the demo from outside a container or VM; PORT=... to move it.
demo: $(DEMO_VENV)/.flask-stamp
	HOST=$(HOST) PORT=$(PORT) $(DEMO_BIN)/python -m examples.flask_app

demo-asgi: $(DEMO_VENV)/.asgi-stamp
	HOST=$(HOST) PORT=$(ASGI_PORT) $(DEMO_BIN)/python -m examples.starlette_app

# The README's screenshot, docs/demo.png: the browser test's first visit to the demo, taken again.
screenshot: $(STAMP)
	UPDATE_DEMO_SCREENSHOT=1 $(BIN)/python -m pytest -q tests/test_browser.py -k readme

# The Django adapter under Django 4.2 LTS on the oldest Python and the newest Django
# pip offers on the newest Python, each in a throwaway venv under build/. A Python
# that is not installed falls back to $(PYTHON) (whose newest Django may be older).
DJANGO_OLD    ?= django==4.2.*
DJANGO_NEW    ?= django
DJANGO_OLD_PY ?= $(shell python3.10 -c '' 2>/dev/null && echo python3.10 || echo $(PYTHON))
DJANGO_NEW_PY ?= $(shell python3.13 -c '' 2>/dev/null && echo python3.13 || echo $(PYTHON))

test-django-versions:
	@set -e; for pair in '$(DJANGO_OLD)@$(DJANGO_OLD_PY)' '$(DJANGO_NEW)@$(DJANGO_NEW_PY)'; do \
	  spec="$${pair%%@*}"; py="$${pair#*@}"; venv="build/django-venv-$$(echo "$$spec" | tr -c 'a-z0-9.\n' '_')"; \
	  rm -rf "$$venv"; "$$py" -m venv "$$venv"; \
	  "$$venv/bin/python" -m pip install --quiet --upgrade pip; \
	  "$$venv/bin/python" -m pip install --quiet -e '.[django]' "$$spec" pytest anyio; \
	  "$$venv/bin/python" -c 'import django, sys; print(f"== Django {django.__version__}, Python {sys.version.split()[0]}")'; \
	  "$$venv/bin/python" -m pytest -q tests/test_django.py tests/test_behaviour.py -k django; \
	done

# Build the wheel and sdist, install the wheel into a fresh venv, import every module.
dist-check: $(STAMP)
	rm -rf dist build/dist-venv
	$(BIN)/python -m build --outdir dist . >/dev/null
	$(PYTHON) -m venv build/dist-venv
	build/dist-venv/bin/python -m pip install --quiet "$$(ls dist/*.whl)[flask,django,asgi,fastapi]" pytest
	cd build && dist-venv/bin/python ../.ci/check_dist.py ../dist

clean:
	rm -rf $(VENV) $(DEMO_VENV) build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache

# In-process cost per request next to peers, and first-visit latency (prints a report; < 5 min).
bench: $(STAMP)
	$(BIN)/python -m bench.micro

# What the transports cost to build, and what hostile answers make them spend (about a minute).
bench-transport: $(STAMP)
	$(BIN)/python -m bench.transport

# CPU instructions per request, in-process and in real servers, next to the targets (needs valgrind:
# apt-get install valgrind; about 8 min). A subset in a minute: INSTRUCTIONS_ARGS="--only asgi,wsgi".
bench-instructions: $(STAMP)
	$(BIN)/python -m bench.instructions $(INSTRUCTIONS_ARGS)

# The in-process budgets CI enforces (ASGI <= 0.50x asgi-correlation-id, WSGI <= 0.55x ProxyFix;
# needs valgrind; about 30 s): fails when a change makes the returning visitor cost more.
bench-budget: $(STAMP)
	$(BIN)/python -m bench.instructions --only asgi,wsgi --lean --check

# Where a returning visitor's instructions go: each part of the hot path alone (needs valgrind; under a minute).
bench-parts: $(STAMP)
	$(BIN)/python -m bench.parts

# The two corners of the matrix (oldest Python with the oldest frameworks, newest with newest): CI runs these.
test-compat: $(STAMP)
	PYENV_VERSION="$$(pyenv versions --bare 2>/dev/null | grep -E '^3\.1[0-3]\.' | paste -sd: -)" \
		$(BIN)/nox -s "tests-3.10(frameworks='oldest')" "tests-3.13(frameworks='newest')" $(NOX_ARGS)

# The compatibility matrix: every Python 3.10-3.13 on this machine x oldest/newest frameworks.
# pyenv keeps one Python active; list them all so that nox finds python3.10 ... python3.13.
test-all: $(STAMP)
	PYENV_VERSION="$$(pyenv versions --bare 2>/dev/null | grep -E '^3\.1[0-3]\.' | paste -sd: -)" \
		$(BIN)/nox $(NOX_ARGS)

# Real servers (gunicorn, uvicorn) under load against a failing fake Hello Retail: correctness, latency, memory.
load: $(STAMP)
	$(BIN)/python -m bench.load $(LOAD_ARGS)

# Requests/s of real servers with and without the middleware (needs wrk: apt-get install wrk).
throughput: $(STAMP)
	$(BIN)/python -m bench.throughput $(THROUGHPUT_ARGS)
