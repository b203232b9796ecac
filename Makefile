# The two fresh-machine commands (see README.md):
#   make demo   install, then run the offline demo sweep (sweeps/smoke.yaml) and its report
#   make test   install, then lint and run the tests
.PHONY: setup setup-test demo test test-heavy lint

export HF_HUB_OFFLINE ?= 1
export HF_DATASETS_OFFLINE ?= 1

setup:
	bash scripts/setup.sh

setup-test:
	bash scripts/setup.sh --test

demo: setup
	.venv/bin/xscale sweep sweeps/smoke.yaml
	.venv/bin/xscale analyze runs/smoke

lint:
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .

# two workers (each test file in one of them): the end-to-end tests wait on subprocesses, Ray
# and MLflow more than they compute, so two at a time finish well under CI's 15-minute budget
test: setup-test lint
	.venv/bin/python -m pytest -q -ra -n $${XSCALE_TEST_WORKERS:-2} --dist loadgroup -m "not heavy"

# the multi-process fault, cluster and real-architecture runs (killed drivers and signals, two
# Ray nodes, 2-worker ASHA, real XLM-R base at world 2, an MLflow server stopped mid-trial):
# minutes each on 2 cores, so apart from `make test`; CI runs both (.ci/run)
test-heavy: setup-test
	.venv/bin/python -m pytest -q -ra -n $${XSCALE_TEST_WORKERS:-2} --dist loadgroup -m heavy
