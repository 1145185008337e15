# mailer: `make demo` runs the main job end to end; `make test` runs the tests.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
# The demo runs on embedded defaults in its own folder (build/demo): a fresh SQLite database, the
# file backend, demo-only secrets. Real secrets come from your environment (README, "Secrets").
DEMO_DIR = build/demo
DEMO_ENV = MAILER_SECRET_KEYS=demo-only-not-secret MAILER_HASH_KEY=demo-only-not-secret \
           MAILER_DATABASE_URL=sqlite:///$(DEMO_DIR)/mailer.db MAILER_OUTBOX_DIR=$(DEMO_DIR)/outbox \
           MAILER_BACKEND=file
MAILER = $(DEMO_ENV) $(BIN)/mailer

.PHONY: venv demo test wheel bench screenshots clean

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip uninstall -q -y mailer 2>/dev/null || true   # the distribution's old name (now mailer-newsroom)
	$(BIN)/pip install -q -e '.[test]'
	touch $@

demo: venv
	rm -rf $(DEMO_DIR) && mkdir -p $(DEMO_DIR)
	@echo "\$$ mailer db upgrade"; $(MAILER) db upgrade
	@echo "\$$ mailer lists add news \"Riverside Solidarity Network newsletter\""; $(MAILER) lists add news "Riverside Solidarity Network newsletter"
	@echo "\$$ mailer subscribers import subscribers/example.csv --list news --confirmed --rejects $(DEMO_DIR)/import-rejects.csv"; $(MAILER) subscribers import subscribers/example.csv --list news --confirmed --rejects $(DEMO_DIR)/import-rejects.csv
	@echo "\$$ mailer lists"; $(MAILER) lists
	@echo "\$$ mailer compose issues/example"; $(MAILER) compose issues/example
	@echo "\$$ mailer preview issues/example"; $(MAILER) preview issues/example
	@echo "\$$ mailer send issues/example --list news --yes"; $(MAILER) send issues/example --list news --yes
	@echo "\$$ mailer status issues/example"; $(MAILER) status issues/example
	@echo
	@echo "demo done: preview in build/example/index.html; the sent messages are in $(DEMO_DIR)/outbox/:"
	@ls $(DEMO_DIR)/outbox

test: venv
	$(BIN)/pytest -q

# dist/mailer_newsroom-<version>-py3-none-any.whl (README, "Installing from a wheel")
wheel: venv
	$(BIN)/pip wheel -q --no-deps --no-build-isolation -w dist .

# each prints its figures next to a reference measured in the same run (see bench/*_NOTES.md)
bench: venv
	$(BIN)/python bench/compose_bench.py
	$(BIN)/python bench/pasted_bench.py
	$(BIN)/python bench/message_bench.py
	$(BIN)/python -m bench.import_bench
	$(BIN)/python bench/send_bench.py
	$(BIN)/python bench/web_bench.py
	$(BIN)/python bench/schedule_bench.py
	$(BIN)/python bench/cli_bench.py
	$(BIN)/python bench/segment_bench.py 200000 --postgres
	$(BIN)/python bench/desk_bench.py

screenshots: venv
	$(BIN)/python -m mailer.web.screenshots

clean:
	rm -rf build dist outbox .pytest_cache
