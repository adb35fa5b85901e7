# The targets `sam build` runs for BuildMethod: makefile (each CodeUri/ContentUri directory has a
# Makefile that includes this one). The project builds every function and the layer itself,
# for python3.12 on arm64 with pip's --platform flags (python -m pipeline.packaging, cached),
# so SAM needs neither Docker nor a local python3.12: it only gets a copy in ARTIFACTS_DIR.
ROOT := $(abspath $(dir $(lastword $(MAKEFILE_LIST)))..)
# The project's Makefile bootstraps .venv first; the environment may say otherwise (a test
# builds elsewhere with the interpreter it runs on).
BUILD_LAMBDA ?= $(MAKE) -C $(ROOT) build-lambda
BUILT ?= $(ROOT)/build/lambda

build-SharedLayer:
	$(BUILD_LAMBDA)
	cp -R $(BUILT)/layer/. $(ARTIFACTS_DIR)

build-%:
	$(BUILD_LAMBDA)
	test -d $(BUILT)/$*
	cp -R $(BUILT)/$*/. $(ARTIFACTS_DIR)
