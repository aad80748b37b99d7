# The template's two commands: `make demo` and `make test`. `make help` lists the rest.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DEMO := build/demo

.DEFAULT_GOAL := help
.PHONY: help machine test quick demo clean standin

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | expand -t 12

$(BIN)/.installed: requirements-dev.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "make: installing cookiecutter, cruft, pytest and the test tools into $(VENV) (about 30 s the first time)"
	$(BIN)/python -m pip install --progress-bar off --disable-pip-version-check -r requirements-dev.txt
	@touch $@

machine: ## install the Debian packages and container configuration the tests need
	tests/machine/setup.sh

test: machine $(BIN)/.installed ## every test of the template (bakes, launcher, images, infra)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest

quick: $(BIN)/.installed ## the answers and every bake, without images or the projects' own checks (under a minute)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest tests/test_answers.py tests/test_bake.py \
		-k "not make_test_passes"

demo: $(BIN)/.installed ## bake the default project into build/demo and run its checks
	rm -rf $(DEMO) build/.bake
	@# Quiet: the hook's "Next steps" would name build/.bake, which is gone a line later.
	TEMPLATE_BAKE_QUIET=1 $(BIN)/cookiecutter --no-input . -o build/.bake
	mv build/.bake/* $(DEMO) && rmdir build/.bake
	@# The project's checks want its own Python version; without it, this machine's python3 does.
	@if $(MAKE) -s --no-print-directory -C $(DEMO) python-installed 2>/dev/null; then \
		$(MAKE) -C $(DEMO) test; \
	else echo "make: the demo's checks run on $(PYTHON) instead (ruff and mypy still target the project's version)"; \
		$(MAKE) -C $(DEMO) test PYTHON=$(PYTHON); fi
	@printf '\nThe default project is in %s and its checks pass.\nNext: cd %s && make run   # the app on http://localhost:7071 (make help for the rest)\n' $(DEMO) $(DEMO)

standin: ## build the offline stand-in base images (test fixtures) for PYTHON_VERSION (3.13, 3.12 or 3.11)
	tests/image/standin/build.sh $(or $(PYTHON_VERSION),3.13)

clean: ## remove the virtual environment and build/
	rm -rf $(VENV) build
