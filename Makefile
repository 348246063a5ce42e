# Set-up and the two everyday commands. `make demo` runs a short search, `make test` the suite.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.archlab-installed

.PHONY: install demo test lint dashboard

$(STAMP): pyproject.toml
	@# Fashion-MNIST, the data set the accuracy evidence is measured on (a Debian package: no download)
	@if [ ! -d /usr/share/datasets/fashion-mnist ]; then \
		if [ "$$(id -u)" = 0 ]; then \
			(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist) \
				|| echo "could not install dataset-fashion-mnist; archlab works without it"; \
		else \
			echo "Fashion-MNIST is not installed: sudo apt-get install dataset-fashion-mnist"; \
		fi; \
	fi
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch first and pinned: 2.13.0 is the CPU wheel; an unpinned torch pulls a multi-GB CUDA build
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[test,onnx,postgres,browser]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/archlab search --space plgvit --target-latency 1s --n-trials 12

test: $(STAMP)
	$(BIN)/python -m pytest -q

dashboard: $(STAMP)
	$(BIN)/archlab dashboard

lint: $(STAMP)
	$(BIN)/ruff check archlab tests bench app
	$(BIN)/mypy
