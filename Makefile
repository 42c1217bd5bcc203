# densitylab: `make help` lists the targets.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
ARGS ?=
MODULE ?=

.PHONY: help install train test test-slow lint tensorboard bench study mutation clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

install: $(STAMP)  ## create .venv and install the project with its test extras

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

train: $(STAMP)  ## a default training run on CPU (flow1d on a 1-D mixture); ARGS="..." adds overrides
	$(BIN)/python -m src.train $(ARGS)

test: $(STAMP)  ## the fast test suite
	$(BIN)/python -m pytest -q $(ARGS)

test-slow: $(STAMP)  ## only the long tests
	$(BIN)/python -m pytest -q -m slow $(ARGS)

lint: $(STAMP)  ## ruff
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

tensorboard: $(STAMP)  ## serve every run under outputs/
	$(BIN)/tensorboard --logdir outputs

bench: $(STAMP)  ## time the project against its anchors (benchmarks/)
	@for script in benchmarks/*.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done

STUDY := outputs/toy2d_study/multiruns

study: $(STAMP)  ## the 2-D toy study (gmm by EM, realnvp, nsf × 9 toys × 3 seeds), its table into docs/results.md
	$(BIN)/python -m src.train experiment=toy2d_study
	$(BIN)/python -m src.compare $$(ls -td $(STUDY)/* | head -1) --out docs/toy2d_study --readme docs/results.md --curves

mutation: $(STAMP)  ## mutation testing (cosmic-ray, the dev extra) of the derivation modules, resumable; MODULE=histogram for one
	@$(BIN)/python -c "import cosmic_ray" 2>/dev/null || $(BIN)/pip install --quiet -e '.[dev]'
	$(BIN)/python mutation/run.py $(MODULE) $(ARGS)

clean:  ## remove outputs, caches and the virtual environment
	find outputs -mindepth 1 ! -name .gitkeep -exec rm -rf {} +
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis lightning_logs
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
