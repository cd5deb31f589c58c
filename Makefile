# Two entry points a new user needs; both create the environment on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: bench test envs browser lint clean

# Runtimes that need their own environment (see inferometer env --help).  Created once and
# reused; the contract suite runs every runtime whose environment exists.
ENVS := mxnet ncnn onnxruntime-openvino tensorflow tvm paddle jax onnxruntime==1.20.1 triton

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# -c constraints.txt: torch stays the local CPU build, never a multi-GB CUDA one.
	$(BIN)/pip install --quiet -c constraints.txt -e '.[all,dev]'
	touch $(STAMP)

bench: $(STAMP)
	$(BIN)/inferometer run resnet50 --report

envs: $(STAMP)
	for e in $(ENVS); do $(BIN)/inferometer env create "$$e" || exit 1; done

# The report test opens report.html in Debian's chromium (headless).  Installed here when it is
# missing and apt-get is usable; otherwise that one test says why it skipped.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; elif sudo -n true 2>/dev/null; then SUDO=sudo; \
	  else SUDO=none; fi; \
	  if [ "$$SUDO" != none ] && command -v apt-get >/dev/null 2>&1; then \
	    $$SUDO apt-get install -y -qq chromium >/dev/null 2>&1 || \
	    { $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium >/dev/null; }; \
	  else echo "note: no chromium and no root apt-get: the browser test will skip"; fi; }

test: $(STAMP) envs browser
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks

clean:
	rm -rf $(VENV) runs .pytest_cache .artifacts
