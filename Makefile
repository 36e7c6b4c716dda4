# Two entry points a fresh machine needs (see README): `make demo` and `make test`.
PYTHON ?= python3
WORK ?= work
DATA ?= ../shared/data/chnsenticorp

.PHONY: install test demo bench

# torch first, pinned to the CPU build that lies on these machines' disk: a bare `torch`
# requirement would pull a several-GB CUDA build. GPU users install their own torch first.
install:
	$(PYTHON) -m pip install -q torch==2.13.0
	$(PYTHON) -m pip install -q -e '.[test,teacher]'

test: install
	$(PYTHON) -m pytest -q

demo: install
	datadistill augment --input $(DATA)/train.tsv --output $(WORK)/student/unsup_train_aug.tsv --n-iter 10 --seed 1
	datadistill student train --config examples/cls_bow_ch.json --set output=$(WORK)/student/bow

bench: install
	$(PYTHON) bench/bench_augment.py
	$(PYTHON) bench/bench_students.py
