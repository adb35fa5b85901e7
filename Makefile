# The quick start is two commands: `make demo` and `make test`. Both bootstrap .venv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test lint typecheck unit bench fuzz clean build build-lambda openapi

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	# amazon-kclpy fetches the MultiLangDaemon jars its pom.xml pins (Maven Central) while its
	# wheel builds; fail here, not in the KCL tests, when they are missing.
	$(BIN)/python -c 'from pipeline.kcl.jars import jar_directory; jar_directory()'
	touch $(STAMP)

# checkov pins its own boto3 and friends: it gets a virtualenv of its own.
TOOLS := .venv-tools
TOOLS_STAMP := $(TOOLS)/.installed

$(TOOLS_STAMP):
	test -x $(TOOLS)/bin/python || $(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet --upgrade pip
	$(TOOLS)/bin/python -m pip install --quiet 'checkov>=3.2,<4'
	touch $(TOOLS_STAMP)

# aws-sam-cli (`sam validate --lint`, `sam build`) pins its own dependencies too.
SAM := .venv-sam
SAM_STAMP := $(SAM)/.installed

$(SAM_STAMP):
	test -x $(SAM)/bin/python || $(PYTHON) -m venv $(SAM)
	$(SAM)/bin/python -m pip install --quiet --upgrade pip
	$(SAM)/bin/python -m pip install --quiet 'aws-sam-cli>=1.120,<2'
	touch $(SAM_STAMP)

install: $(STAMP) $(TOOLS_STAMP) $(SAM_STAMP)

demo: $(STAMP)
	$(BIN)/fmcg demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check pipeline stream_consumers glue_jobs benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy

test: lint typecheck $(TOOLS_STAMP) $(SAM_STAMP)
	$(BIN)/python -m pytest -n 2 --durations=15

# Property suites with fresh random seeds and FUZZ_SCALE x the examples, round after round
# for FUZZ_MINUTES (make test is derandomized: same commit, same result).
FUZZ_MINUTES ?= 10
FUZZ_SCALE ?= 10
fuzz: $(STAMP)
	$(BIN)/python tests/fuzz.py --minutes $(FUZZ_MINUTES) --scale $(FUZZ_SCALE)

# The forecaster benchmark compares against statsforecast's AutoETS (the `bench` extra).
bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	$(BIN)/python benchmarks/run_all.py

# Every deployment artifact into build/: the functions' code and their layer for python3.12
# on arm64 (build/lambda, size-checked), and the Glue scripts and wheel. No Docker, no local
# python3.12: pip's --platform flags fetch the target's wheels. `sam build` calls
# build-lambda through infra/sam.mk. The local runtime builds its own host copy on demand.
build: $(STAMP)
	$(BIN)/python -m pipeline.packaging --out build

build-lambda: $(STAMP)
	$(BIN)/python -m pipeline.packaging --out build --only lambda

# GET /openapi.json is a mock integration in infra/template.yaml: rewrite its document from
# the routes after changing them (a unit test fails until then).
openapi: $(STAMP)
	$(BIN)/python -m pipeline.api.openapi_document

clean:
	rm -rf $(VENV) $(TOOLS) $(SAM) build .aws-sam .fmcg .pytest_cache .mypy_cache .ruff_cache
