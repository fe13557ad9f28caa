# mumo — set-up and entry points. `make train` / `make test` create .venv on first use.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: install data train test test-slow bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	# learn2learn 0.2.0: no py3.11 wheel; build from sdist with a fresh Cython, without its heavy deps.
	$(PY) -m pip install -q --no-deps --no-cache-dir learn2learn==0.2.0 -C--build-option=build_ext
	touch $(STAMP)

install: $(STAMP)

data: $(STAMP)
	$(PY) -m mumo.classification.offline --root data/offline

train: $(STAMP)
	$(PY) -m mumo.train $(ARGS)

test: $(STAMP)
	$(PY) -m pytest $(ARGS)

test-slow: $(STAMP)
	$(PY) -m pytest -m slow $(ARGS)

bench: $(STAMP)
	$(PY) -m mumo.bench $(ARGS)

clean:
	rm -rf $(VENV) outputs/*/ .pytest_cache
