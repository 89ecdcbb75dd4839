"""``python -m disco.worker``: run one task in this process (library.md 17.1).

The job home's launcher ``bin/disco-worker`` execs this with the node's Python.
"""

from disco.worker import Worker

if __name__ == "__main__":
    Worker.main()
