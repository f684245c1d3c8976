# Everything sets itself up: `make demo` and `make test` on a fresh machine.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
PORT   ?= 8000
EXTRAS := flask,django,asgi,dev

.PHONY: venv test lint demo bench dist-check clean

$(STAMP): setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[$(EXTRAS)]'
	touch $(STAMP)

venv: $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Only the directories that exist on this branch (bench/ may not yet).
LINT_DIRS := $(wildcard hr_middleware tests examples bench)

lint: $(STAMP)
	$(BIN)/ruff check $(LINT_DIRS)
	$(BIN)/ruff format --check $(LINT_DIRS)
	$(BIN)/mypy --strict hr_middleware

demo: $(STAMP)
	PORT=$(PORT) $(BIN)/python -m examples.flask_app

# Build the wheel and sdist, install the wheel into a fresh venv, import every module.
dist-check: $(STAMP)
	rm -rf dist build/dist-venv
	$(BIN)/python -m build --outdir dist . >/dev/null
	$(PYTHON) -m venv build/dist-venv
	build/dist-venv/bin/python -m pip install --quiet "$$(ls dist/*.whl)[flask,django,asgi]" pytest
	cd build && dist-venv/bin/python ../.ci/check_dist.py ../dist

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache
