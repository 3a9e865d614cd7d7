# Every target bootstraps .venv on first use; `make help` lists them.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
CONFIG ?= configs/cpu.yaml
ARGS ?=
MODEL ?=
IN ?=
OUT ?= predictions.jsonl
MODELS ?=
N ?= 50
FILE ?=
NAME ?=
TASKS ?=
LABELLED ?=
ENGINE ?=

.DEFAULT_GOAL := help
.PHONY: help venv data agreement train cv recipes test lint bench predict evaluate report coverage suggest import-labels label-studio audit al-curves sources clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-13s %s\n", $$1, $$2}'
	@echo "  variables: CONFIG=$(CONFIG) ARGS='key=value ...' RESUME=1 MODEL=models/<run> IN=path OUT=file MODELS='models/a models/b' PRED=predictions.jsonl LABELLED=sample.jsonl ENGINE=ray"

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch first, pinned to a release every supported platform has a wheel for.
	$(PY) -m pip install --quiet "torch==2.13.0"
	$(PY) -m pip install --quiet -e ".[test]"
	touch $@

venv: $(VENV)/.installed ## Create .venv and install the project

data: $(VENV)/.installed ## Validate annotations, build data/build/ and print the label table
	$(PY) -m train.cli.data --config $(CONFIG) $(ARGS)

train: $(VENV)/.installed ## Train the tagger (CONFIG=..., ARGS="train.recipe=fine-tune", RESUME=1)
	$(PY) -m train.cli.train --config $(CONFIG) $(if $(RESUME),train.resume=true) $(ARGS)

cv: $(VENV)/.installed ## Cross-validate the latest run's config (MODEL=...): mean ± sd, added to its model card
	$(PY) -m train.cli.cv $(if $(MODEL),--model $(MODEL)) $(ARGS)

recipes: $(VENV)/.installed ## Fine-tuning recipes compared by leave-event-out CV -> bench/recipes.json
	$(PY) -m train.cli.recipes $(ARGS)

agreement: $(VENV)/.installed ## Inter-annotator agreement on the double-annotated articles
	$(PY) -m train.cli.agreement

sources: $(VENV)/.installed ## Source extractor on the labelled corpus, gated by gold/predicted/no speakers [MODEL=run, or MODEL="run1 run2 ..." leave-event-out]
	$(PY) -m train.cli.sources $(foreach m,$(MODEL),--model $(m)) $(ARGS)

test: $(VENV)/.installed ## Run the test suite
	$(PY) -m pytest -q

lint: $(VENV)/.installed ## ruff, as pyproject.toml configures it
	$(PY) -m ruff check train tests

bench: $(VENV)/.installed ## Speed benchmarks (ARGS="--arch embedded-e5", "--make-train 3"); default: rubert-tiny2 architecture
	$(PY) -m train.cli.bench $(ARGS)

predict: $(VENV)/.installed ## Tag new articles: IN=path/ OUT=predictions.jsonl [MODEL=models/<run>] [ENGINE=ray OUT=dir]
	$(PY) -m train.cli.predict $(if $(MODEL),--model $(MODEL)) $(if $(ENGINE),--engine $(ENGINE)) $(IN) --out $(if $(filter ray,$(ENGINE)),$(if $(filter command line environment,$(origin OUT)),$(OUT),predictions),$(OUT)) $(ARGS)

evaluate: $(VENV)/.installed ## Score a checkpoint: MODEL=models/<run> [ARGS="--data file.jsonl"]
	$(PY) -m train.cli.evaluate $(if $(MODEL),--model $(MODEL)) $(ARGS)

report: $(VENV)/.installed ## Compare checkpoints: MODELS="models/a models/b" (default: every run)
	$(PY) -m train.cli.report $(MODELS) $(ARGS)

coverage: $(VENV)/.installed ## Coverage page: PRED=predictions.jsonl or a part-file dir [OUT=dir] [MODEL=models/<run>] [LABELLED=sample.jsonl] [ENGINE=ray]
	$(PY) -m train.cli.coverage $(PRED) $(if $(ENGINE),--engine $(ENGINE)) $(if $(filter command line environment,$(origin OUT)),--out $(OUT)) $(if $(MODEL),--model $(MODEL)) $(if $(LABELLED),--labelled $(LABELLED)) $(ARGS)

suggest: $(VENV)/.installed ## Sentences to label next: IN=path/ N=50 OUT=suggestions/ [MODEL=models/<run>]
	$(PY) -m train.cli.suggest --config $(CONFIG) $(if $(MODEL),--model $(MODEL)) $(IN) --n $(N) --out $(if $(filter command line,$(origin OUT)),$(OUT),suggestions) $(ARGS)

import-labels: $(VENV)/.installed ## Label Studio JSON export -> data/annotations/: FILE=export.json [NAME=<stem>]
	$(PY) -m train.cli.import_labels --config $(CONFIG) $(FILE) $(if $(NAME),--name $(NAME)) $(ARGS)

label-studio: $(VENV)/.installed ## Install (first use) and start Label Studio with a project [TASKS=suggestions/tasks.json]
	$(PY) -m train.cli.label_studio --config $(CONFIG) $(if $(TASKS),--tasks $(TASKS)) $(ARGS)

audit: $(VENV)/.installed ## Likely label errors (cleanlab, out-of-fold) -> reports/audit/
	$(PY) -m train.cli.audit --config $(CONFIG) $(ARGS)

al-curves: $(VENV)/.installed ## Learning curves: margin vs random sampling, simulated on the labelled data
	$(PY) -m train.cli.al_curves --config $(CONFIG) $(ARGS)

clean: ## Remove built data (not models/ or .venv)
	rm -rf data/build
