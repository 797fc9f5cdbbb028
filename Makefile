# CIFTA Exchange. Two commands: `make demo` and `make test`; everything else is set up on the way.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint typecheck schemas vectors bench bench-crypto bench-audit bench-lookup clean \
	catalogs catalogs-update console chromium screenshots
.PHONY: bench-cluster bench-attachments bench-outbox

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check schemas services tests bench docs
	$(BIN)/ruff format --check schemas services tests bench docs

typecheck: $(STAMP)
	$(BIN)/mypy schemas services

# The suite runs on WORKERS processes (pytest-xdist), one test module to a worker; the tests that
# bound how long a node takes (marked exclusive) then run alone, so a busy neighbour cannot decide
# them. Both parts run whatever the first one gives, so one failure does not hide another; the
# target fails if either part did.
WORKERS ?= 2

test: lint typecheck catalogs chromium
	status=0; \
	$(BIN)/python -m pytest -q -n $(WORKERS) --dist loadscope -m 'not exclusive' || status=$$?; \
	$(BIN)/python -m pytest -q -m exclusive || status=$$?; \
	exit $$status

schemas: $(STAMP)
	$(BIN)/python -m schemas.generate

vectors: $(STAMP)
	$(BIN)/python docs/vectors/generate.py
	$(BIN)/python docs/vectors/generate_attachments.py

bench: $(STAMP)
	$(BIN)/python bench/e2e.py

bench-crypto: $(STAMP)
	$(BIN)/python bench/crypto.py

bench-audit: $(STAMP)
	$(BIN)/python bench/audit.py

bench-lookup: $(STAMP)
	$(BIN)/python bench/lookup.py

# one hub server vs the three-server R3 cluster, each against raw JetStream on the same topology
bench-cluster: $(STAMP)
	$(BIN)/python bench/cluster.py

bench-attachments: $(STAMP)
	$(BIN)/python bench/attachments.py

# the outbox across a link of 40 ms round trip, one round at a time and pipelined, vs raw JetStream
bench-outbox: $(STAMP)
	$(BIN)/python bench/outbox_rtt.py

demo: $(STAMP)
	$(BIN)/cifta demo

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache .pytest_cache .hypothesis

# AsyncAPI 3.0.0 documents of the node and the audit service, from their FastStream brokers
.PHONY: asyncapi
asyncapi: $(STAMP)
	$(BIN)/python docs/asyncapi/generate.py

# -- languages and the officer console ------------------------------------------------------------
# Catalogs of es, en, fr, pt (services/i18n). The .po files are committed; the .mo files are built
# here and not committed. catalogs-update re-extracts the messages after a change in the code or
# templates; tests/unit/test_catalogs.py fails while a catalog is stale or incomplete.
I18N := services/i18n/locale

catalogs: $(STAMP)
	@$(BIN)/pybabel compile -d $(I18N) -D messages > /dev/null 2>&1 || $(BIN)/pybabel compile -d $(I18N) -D messages

catalogs-update: $(STAMP)
	$(BIN)/pybabel extract -F babel.cfg -k N_ --no-location --sort-output --omit-header \
		--project cifta-exchange -o $(I18N)/messages.pot .
	for lang in es en fr pt; do test -f $(I18N)/$$lang/LC_MESSAGES/messages.po || \
		$(BIN)/pybabel init -i $(I18N)/messages.pot -d $(I18N) -D messages -l $$lang; done
	$(BIN)/pybabel update -i $(I18N)/messages.pot -d $(I18N) -D messages --no-fuzzy-matching \
		--ignore-obsolete

# The browser tests drive Debian's Chromium (the Playwright wheel ships no browser).
chromium:
	@test -x /usr/bin/chromium || (apt-get update -qq && apt-get install -y -qq chromium)

console: $(STAMP) catalogs
	$(BIN)/python -m services.testbed.console_demo

# The README's screenshots of the officer console (docs/screenshots), in Spanish and Portuguese.
screenshots: $(STAMP) catalogs chromium
	$(BIN)/python docs/screenshots.py
