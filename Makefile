# Two entry points a new user needs; both create the environment on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: bench test envs lint clean

# Runtimes that need their own environment (see inferometer env --help).  Created once and
# reused; the contract suite runs every runtime whose environment exists.
ENVS := mxnet ncnn onnxruntime-openvino tensorflow tvm paddle jax onnxruntime==1.20.1

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# -c constraints.txt: torch stays the local CPU build, never a multi-GB CUDA one.
	$(BIN)/pip install --quiet -c constraints.txt -e '.[all,dev]'
	touch $(STAMP)

bench: $(STAMP)
	$(BIN)/inferometer run resnet50

envs: $(STAMP)
	for e in $(ENVS); do $(BIN)/inferometer env create "$$e" || exit 1; done

test: $(STAMP) envs
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks

clean:
	rm -rf $(VENV) runs .pytest_cache
