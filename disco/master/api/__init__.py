"""HTTP API of the master: route tables (jobs, ctrl, data) and shared helpers."""
