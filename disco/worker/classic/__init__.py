"""The classic map/reduce worker: ``worker.py`` (the ``Worker``), ``func.py`` (job functions).

Nothing is imported here, so that importing a submodule stays cheap.
"""
