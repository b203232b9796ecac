# The two fresh-machine commands (see README.md):
#   make demo   install, then run the offline demo sweep (sweeps/smoke.yaml)
#   make test   install, then lint and run the tests
.PHONY: setup setup-test demo test lint

export HF_HUB_OFFLINE ?= 1
export HF_DATASETS_OFFLINE ?= 1

setup:
	bash scripts/setup.sh

setup-test:
	bash scripts/setup.sh --test

demo: setup
	.venv/bin/xscale sweep sweeps/smoke.yaml

lint:
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .

test: setup-test lint
	.venv/bin/python -m pytest -q -ra
