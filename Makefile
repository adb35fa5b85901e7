# The quick start is two commands: `make demo` and `make test`. Both bootstrap .venv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install lock test-latest demo test suite lint typecheck unit bench fuzz clean build build-lambda openapi

# Every environment installs from a committed lock (locks/, `make lock`), hashes checked:
# first pip, setuptools and wheel (locks/build.txt), then the environment's lock with build
# isolation off, so an sdist (amazon-kclpy, pyspark) builds with the locked setuptools and
# nothing is fetched unpinned; `pip check` confirms the set is consistent.
LOCKED_INSTALL := -m pip install --quiet --disable-pip-version-check --no-input --require-hashes

define locked_venv
	test -x $(1)/bin/python || $(PYTHON) -m venv $(1)
	$(1)/bin/python $(LOCKED_INSTALL) -r locks/build.txt
	$(1)/bin/python $(LOCKED_INSTALL) --no-build-isolation -r $(2)
endef

$(STAMP): pyproject.toml locks/build.txt locks/dev.txt locks/kcl-jars.txt locks/iceberg-jars.txt \
		infra/glue/lock-5.1.txt infra/glue/python-modules-5.1.txt
	$(call locked_venv,$(VENV),locks/dev.txt)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	$(BIN)/python -m pip check
	# amazon-kclpy fetched the MultiLangDaemon jars its pom.xml pins (Maven Central) while its
	# wheel built; each must be the one Maven Central published (locks/kcl-jars.txt).
	$(BIN)/python -m pipeline.kcl.jars --verify
	# Iceberg's Spark runtime and AWS bundle for local Spark (Glue 5.1 ships the same version),
	# downloaded from Maven Central and checked against locks/iceberg-jars.txt.
	$(BIN)/python -m pipeline.spark.jars --install
	# Glue 5.1's image for the jobs run from their artifacts (its modules and Spark from the
	# hash lock infra/glue/lock-5.1.txt, ~1 GB, cached in build/local/glue by its digest).
	$(BIN)/python -m pipeline.local.glue_environment
	touch $(STAMP)

# checkov pins its own boto3 and friends: it gets a virtualenv of its own.
TOOLS := .venv-tools
TOOLS_STAMP := $(TOOLS)/.installed

$(TOOLS_STAMP): locks/build.txt locks/tools.txt
	$(call locked_venv,$(TOOLS),locks/tools.txt)
	$(TOOLS)/bin/python -m pip check
	touch $(TOOLS_STAMP)

# aws-sam-cli (`sam validate --lint`, `sam build`) pins its own dependencies too.
SAM := .venv-sam
SAM_STAMP := $(SAM)/.installed

$(SAM_STAMP): locks/build.txt locks/sam.txt
	$(call locked_venv,$(SAM),locks/sam.txt)
	$(SAM)/bin/python -m pip check
	touch $(SAM_STAMP)

install: $(STAMP) $(TOOLS_STAMP) $(SAM_STAMP)

# Re-resolve every lock (locks/*.txt, the layer's, the Glue runtime's, the KCL jars, the
# Iceberg jars' checksums) to the newest versions pyproject's ranges allow; run
# `make test-latest` first to see them pass.
lock: $(STAMP)
	$(BIN)/python -m pipeline.packaging --lock

# The unit and functional tiers in a throwaway environment with the newest versions that
# pyproject allows (not the locks): run it before `make lock`, and now and then, to see an
# upstream change before users do. Functions and Glue jobs still run from their locks.
LATEST := .venv-latest
test-latest: $(TOOLS_STAMP) $(SAM_STAMP)
	rm -rf $(LATEST)
	$(PYTHON) -m venv $(LATEST)
	$(LATEST)/bin/python -m pip install --quiet --upgrade pip
	$(LATEST)/bin/python -m pip install --quiet --upgrade --upgrade-strategy eager -e '.[dev]'
	$(LATEST)/bin/python -m pip check
	$(LATEST)/bin/python -m pip freeze --exclude-editable > $(LATEST)/versions.txt
	$(LATEST)/bin/python -m pytest -n 2 -p no:cacheprovider tests/unit tests/functional

demo: $(STAMP)
	$(BIN)/fmcg demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check pipeline stream_consumers glue_jobs benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy

# The checks side by side: mypy is one process on one core (~31 s from a clean clone), and
# beside the suite it added nothing measurable (the suite took 514.6 s with a cold mypy
# running, 523.6 s alone, the same day). Any failing check fails `make test`.
test: $(STAMP) $(TOOLS_STAMP) $(SAM_STAMP)
	$(MAKE) --no-print-directory -j3 lint typecheck suite

suite: $(STAMP) $(TOOLS_STAMP) $(SAM_STAMP)
	$(BIN)/python -m pytest -n 3 --dist worksteal --durations=15

# Property suites with fresh random seeds and FUZZ_SCALE x the examples, round after round
# for FUZZ_MINUTES (make test is derandomized: same commit, same result).
FUZZ_MINUTES ?= 10
FUZZ_SCALE ?= 10
fuzz: $(STAMP)
	$(BIN)/python tests/fuzz.py --minutes $(FUZZ_MINUTES) --scale $(FUZZ_SCALE)

# The forecaster benchmark compares against statsforecast's AutoETS (the `bench` extra).
bench: $(STAMP)
	$(BIN)/python $(LOCKED_INSTALL) --no-build-isolation -r locks/bench.txt
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
	rm -rf $(VENV) $(TOOLS) $(SAM) $(LATEST) build .aws-sam .fmcg .pytest_cache .mypy_cache .ruff_cache
