# CIFTA Exchange. Two commands: `make demo` and `make test`; everything else is set up on the way.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint typecheck schemas vectors bench bench-crypto bench-audit bench-lookup clean
.PHONY: bench-cluster
.PHONY: bench-attachments

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

test: lint typecheck
	$(BIN)/python -m pytest -q

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

demo: $(STAMP)
	$(BIN)/cifta demo

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache .pytest_cache .hypothesis

# AsyncAPI 3.0.0 documents of the node and the audit service, from their FastStream brokers
.PHONY: asyncapi
asyncapi: $(STAMP)
	$(BIN)/python docs/asyncapi/generate.py
