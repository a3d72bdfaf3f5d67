# Two commands on a fresh machine: `make demo` and `make test`.
# Uses the active virtualenv when there is one, else creates .venv.
ifdef VIRTUAL_ENV
VENV ?= $(VIRTUAL_ENV)
else
VENV ?= .venv
endif
PY := $(VENV)/bin/python
STAMP := $(VENV)/.mmphys-installed
PYTEST_WORKERS ?= 2

.PHONY: install demo test eval-bundled train-tiny recipe-smoke clean

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	# Never replace a torch that is already importable (e.g. a user's CUDA build).
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install "torch==2.13.0"
	$(PY) -m pip install -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(PY) -m mmphys_diffusers.cli.main demo

test: $(STAMP)
	$(PY) -m pytest -n $(PYTEST_WORKERS) -q tests

# Reproduce the bundled baseline / teacher / student physics table (docs/mmphysvideo_tiny.md), ~5 min on CPU.
eval-bundled: $(STAMP)
	$(PY) -m mmphys_diffusers.cli.main eval physics --model simulator --model vae_ceiling=simulator@bundled:student \
		--model bundled:baseline --model bundled:teacher --model bundled:student --feature-net bundled \
		--num-prompts 24 --seeds 0 1 2 --steps 20 --guidance-scale 1.0 --out outputs/eval-bundled
	$(PY) -m mmphys_diffusers.cli.main eval compare outputs/eval-bundled/results.json --model student --reference baseline

# The whole tiny chain on CPU: simulate -> teacher -> student -> LoRA (outputs/train-tiny/).
train-tiny: $(STAMP)
	$(PY) train/train_tiny.py --out outputs/train-tiny

# The MMPhysVideo-Tiny recipe end to end at micro scale (seconds); `--preset cpu|gpu` trains the real thing.
recipe-smoke: $(STAMP)
	$(PY) train/recipes/mmphysvideo_tiny.py --preset smoke --out outputs/recipe-smoke --export outputs/recipe-smoke/export

clean:
	rm -rf outputs .pytest_cache
