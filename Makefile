# The template's two commands: `make demo` and `make test`. `make help` lists the rest.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DEMO := build/demo

.DEFAULT_GOAL := help
.PHONY: help machine test demo clean standin

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | expand -t 12

$(BIN)/.installed: requirements-dev.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $@

machine: ## install the Debian packages and container configuration the tests need
	tests/machine/setup.sh

test: machine $(BIN)/.installed ## every test of the template (bakes, launcher, images, infra)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest

demo: $(BIN)/.installed ## bake the default project into build/demo and run its checks
	rm -rf $(DEMO) build/.bake
	$(BIN)/cookiecutter --no-input . -o build/.bake
	mv build/.bake/* $(DEMO) && rmdir build/.bake
	$(MAKE) -C $(DEMO) test
	@printf '\nThe default project is in %s and its checks pass.\nNext: cd %s && make help\n' $(DEMO) $(DEMO)

standin: ## build the offline stand-in base images (test fixtures) for PYTHON_VERSION (3.11, 3.12 or 3.13)
	tests/image/standin/build.sh $(or $(PYTHON_VERSION),3.11)

clean: ## remove the virtual environment and build/
	rm -rf $(VENV) build
