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
install: $(VPY)
	PYTHONWARNINGS=ignore::UserWarning $(VPY) -m pip install -q -e '.[test]'

demo: install
	$(VPY) examples/count_words.py

test: install
	$(VPY) -m ruff check disco tests examples benchmarks
	$(VPY) -m pytest -q

bench: install
	$(VPY) benchmarks/run.py

clean:
	rm -rf $(VENV) build *.egg-info
