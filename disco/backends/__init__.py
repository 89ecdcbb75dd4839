"""Where tasks run: the narrow interface between the master and the nodes.

``base`` defines the contract; ``local`` runs tasks as processes on this machine (the
default, also used by embedded mode); a Dask backend will implement the same contract.
"""
