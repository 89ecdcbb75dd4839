"""The names the classic worker injects into job functions (library.md 10.4).

Imported by the task path and by module discovery: keep it free of imports.
"""

#: The injected names (library.md 10.4) whose values belong to the task.
TASK_NAMES = (
    "Task",
    "get",
    "put",
    "this_name",
    "this_master",
    "this_host",
    "this_partition",
)

#: Names job functions see on the node without importing them (library.md 10.4): the
#: classic worker injects them, so they are never modules to require.
INJECTED_NAMES = frozenset(
    TASK_NAMES
    + (
        "this_inputs",
        "Params",
        "Worker",
        "util",
        "worker",
        "external",
        "JOBPACK_VERSION1",
    )
)
