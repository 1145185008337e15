# mailer: `make demo` runs the main job end to end; `make test` runs the tests.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
# demo-only secrets: real ones come from your environment (see README, "Secrets")
DEMO_ENV = MAILER_SECRET_KEYS=$${MAILER_SECRET_KEYS:-demo-only-not-secret} \
           MAILER_HASH_KEY=$${MAILER_HASH_KEY:-demo-only-not-secret}

.PHONY: venv demo test bench screenshots clean

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

demo: venv
	$(DEMO_ENV) $(BIN)/mailer compose issues/example
	$(DEMO_ENV) $(BIN)/mailer preview issues/example

test: venv
	$(BIN)/pytest -q

bench: venv
	$(BIN)/python bench/compose_bench.py

clean:
	rm -rf build outbox .pytest_cache
