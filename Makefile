# The two commands of the README.  Both create .venv on first use.
PY ?= python3
VENV ?= .venv
VPY = $(VENV)/bin/python

.PHONY: demo test lint bench install clean

$(VPY):
	$(PY) -m venv $(VENV)
	$(VPY) -m pip install -q --upgrade pip

# setuptools explains every editable install in a boxed UserWarning ("be careful with
# folders named like your package"): nothing to act on here, so it is not shown.
# Default editable mode, not `compat`: see docs/decisions.md ("The development install").
install: $(VPY)
	PYTHONWARNINGS=ignore::UserWarning $(VPY) -m pip install -q -e '.[test]'

demo: install
	$(VPY) examples/count_words.py

# PYTHONNODEBUGRANGES: CPython 3.11 tracebacks parse source lines (ast) to draw their
# ^^^ markers, and its ast module counts recursion in one place for all threads: a
# traceback logged by a master thread while another thread parses can make that parse
# fail (SystemError "AST constructor recursion depth mismatch"). Without debug ranges
# tracebacks do not parse.
test: install
	$(VPY) -m ruff check disco tests examples benchmarks
	PYTHONNODEBUGRANGES=1 $(VPY) -m pytest -q

bench: install
	$(VPY) benchmarks/run.py

clean:
	rm -rf $(VENV) build *.egg-info
