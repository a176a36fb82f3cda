# The two commands of the README: `make demo` and `make test`.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# These targets never read a developer's .env (docs/configuration.md): what they test, show and
# measure is the same on every machine.
export STUDYMASTER_ENV_FILE :=

.PHONY: demo test venv lint check bench load

$(STAMP): requirements.txt requirements-dev.txt
	@command -v $(PYTHON) >/dev/null || { echo "make: $(PYTHON) not found; install Python 3.11 or run make PYTHON=/path/to/python3.11"; exit 2; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(PY) -m studymaster.demo

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

check: $(STAMP)
	$(PY) manage.py check
	DJANGO_SETTINGS_MODULE=studymaster.settings.prod \
	SECRET_KEY="$$($(PY) -c 'import secrets; print(secrets.token_urlsafe(64))')" \
	MONGODB_URI="mongodb+srv://cluster0.example.mongodb.net/" ALLOWED_HOSTS=studymaster.example.com \
	$(PY) manage.py check --deploy --fail-level WARNING

test: lint check
	$(VENV)/bin/pytest

bench: $(STAMP)
	$(PY) -m bench.migration
	$(PY) -m bench.peers
	$(PY) -m bench.sync
	$(PY) -m bench.history

load: $(STAMP)
	$(PY) -m bench.load
	$(PY) -m bench.capacity
