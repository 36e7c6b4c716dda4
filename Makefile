# Two entry points a fresh machine needs (see README): `make demo` and `make test`.
PYTHON ?= python3

.PHONY: install test demo bench

# torch first, pinned to the CPU build that lies on these machines' disk: a bare `torch`
# requirement would pull a several-GB CUDA build. GPU users install their own torch first.
install:
	$(PYTHON) -m pip install -q torch==2.13.0
	$(PYTHON) -m pip install -q -e '.[test,teacher,report,onnx,export,serve]'

test: install
	$(PYTHON) -m ruff check src tests bench
	$(PYTHON) -m ruff format --check src tests bench
	$(PYTHON) -m pytest -q

# The main job: 500 labels + 9,100 unlabelled reviews of the built-in ChnSentiCorp (about 5 minutes
# on 2 quiet CPU cores); the report is work/quick/report/report.md
demo: install
	datadistill run examples/pipeline_quick.json

bench: install
	$(PYTHON) bench/bench_augment.py
	$(PYTHON) bench/bench_students.py
	$(PYTHON) bench/bench_teacher.py --setting cpu
