"""The classic map/reduce worker (library.md 10 and 17).

On the client it turns the classic parameters (``map``, ``reduce``, ``partitions``,
...) into a version 1 jobdict (10.2); the master derives the stages from it (10.3).
On the nodes it runs the stage named in the TASK: ``map`` (17.3), ``map_shuffle`` and
``reduce_shuffle`` (17.4), ``reduce`` (17.5).  Job functions see the names of 10.4,
injected only into the globals of the job's own functions; builtins are never shadowed.
"""

from __future__ import annotations

import builtins
import itertools
import os
import sys
from collections.abc import Iterable, Iterator
from typing import Any

from disco import JOBPACK_VERSION1
from disco.error import DiscoError
from disco.worker import BaseOutput, Params, SerialInput, input_settings, read_index
from disco.worker import Worker as BaseWorker
from disco.worker import protocol as _protocol
from disco.worker.classic.func import (
    chain_reader,
    default_partition,
    disco_output_stream,
    init,
    map_input_stream,
    map_output_stream,
    reduce_input_stream,
    reduce_output_stream,
)
from disco.worker.classic.input_split import DEFAULT_SPLIT_SIZE
from disco.worker.classic.maploop import UNSERIALIZABLE, output_error, run_map
from disco.worker.injected import TASK_NAMES

__all__ = [
    "JOBPACK_VERSION1",
    "Params",
    "Worker",
    "get",
    "put",
    "this_host",
    "this_inputs",
    "this_master",
    "this_name",
    "this_partition",
]

#: Interface stubs of ``classic.func`` (library.md 8.1): never injected (21.11).
_STUBS = frozenset(
    ("map", "reduce", "reduce2", "partition", "combiner", "init", "input_stream", "output_stream")
)
_SHUFFLE_STAGES = ("map_shuffle", "reduce_shuffle")


def _client_version() -> str:
    return "%d.%d" % sys.version_info[:2]


def _streams(value: Any) -> list[Any]:
    if value is None:
        return []
    if callable(value):
        return [value]
    return list(value)


class Worker(BaseWorker):
    """The classic worker: every parameter of library.md 10.1 with its default."""

    jobpack_version = JOBPACK_VERSION1

    def defaults(self) -> dict[str, Any]:
        defaults = super().defaults()
        defaults.update(
            {
                "map": None,
                "map_init": init,
                "map_reader": None,
                "map_input_stream": (map_input_stream,),
                "map_output_stream": (map_output_stream, disco_output_stream),
                "map_shuffle": None,
                "combiner": None,
                "partition": default_partition,
                "partitions": 1,
                "reduce": None,
                "reduce_init": init,
                "reduce_reader": chain_reader,
                "reduce_input_stream": (reduce_input_stream,),
                "reduce_output_stream": (reduce_output_stream, disco_output_stream),
                "reduce_shuffle": None,
                "shuffle": None,
                "ext_params": {},
                "params": Params(),
                "sort": False,
                "sort_buffer_size": "10%",
                "split_size": DEFAULT_SPLIT_SIZE,
                "status_interval": 100000,
                "version": _client_version(),
            }
        )
        return defaults

    # -- client side (library.md 10.2) ----------------------------------------------------
    def jobdict(self, job: Any, **jobargs: Any) -> dict[str, Any]:
        from disco import util
        from disco.worker.classic.input_split import split_inputs, splittable

        jobdict = super().jobdict(job, **jobargs)

        def get(key: str, default: Any = None) -> Any:
            return self.getitem(key, job, jobargs, default)

        has_map = bool(get("map"))
        has_reduce = bool(get("reduce"))
        job_input = get("input", [])
        if not util.isiterable(job_input):
            raise DiscoError(
                "Job 'input' is not a list of input locations, "
                "or a list of such lists: %s" % (job_input,)
            )
        settings = input_settings(job)
        kwargs = {"settings": settings} if settings is not None else {}
        # With a map, dir:// inputs are expanded here; without one the master reads them.
        inputs = util.inputlist(job_input, label=None if has_map else False, **kwargs)
        if has_map and splittable(get("map_reader"), get("map_input_stream")):
            inputs = split_inputs(inputs, get("split_size") or 0)  # one map task per range
        if has_map:
            nr_reduces = get("partitions") or 1
        elif inputs and util.ispartitioned(inputs):
            labels = [label for index in inputs for label, _url, _size in read_index(index)]
            nr_reduces = 1 + max(labels, default=0)
        else:
            nr_reduces = 1
        jobdict.update(
            {
                "input": [list(i) if isinstance(i, tuple) else i for i in inputs],
                "worker": self.bin,
                "map?": has_map,
                "reduce?": has_reduce,
                "reduce_shuffle?": bool(get("reduce_shuffle")),
                "nr_reduces": nr_reduces,
                "save_results": bool(get("save", False) or jobdict["save_results"]),
            }
        )
        return jobdict

    def jobzip(self, job: Any, **jobargs: Any) -> Any:
        import zipfile

        jobzip = super().jobzip(job, **jobargs)
        # External programs (library.md 10.5) go to ext.map/ and ext.reduce/.
        for stage in ("map", "reduce"):
            program = self.getitem(stage, job, jobargs)
            if isinstance(program, dict):
                for name, data in program.items():
                    info = zipfile.ZipInfo("ext.%s/%s" % (stage, name), (1980, 1, 1, 0, 0, 0))
                    info.external_attr = 0o100755 << 16
                    jobzip.writestr(info, data)
        return jobzip

    # -- node side (library.md 17.2) ------------------------------------------------------
    def warm_up(self, job: Any, jobargs: dict[str, Any]) -> None:
        """In a job's warm process, before its tasks fork (``disco.task.preload``):
        the parameter counts of the job's functions, which every task asks for, and
        the names of library.md 10.4 that do not depend on the task, given to the job's
        functions once (``_plan_inject``)."""
        from disco.util import argcount

        values = {}  # what ``resolve`` will make this dict
        for key in list(self):
            try:
                value = self.getitem(key, job, jobargs)
            except Exception:
                continue
            values[key] = value
            for item in value if isinstance(value, list | tuple) else (value,):
                if callable(item) and not isinstance(item, type):
                    argcount(item)
        if len(values) == len(self):
            try:
                self._plan_inject(values)
            except Exception:
                self._inject_plan = None  # each task injects every name, as without it
            if _plain_resolve(self):
                # what ``resolve`` makes this dict in every task, made here once
                self.update(values)
                self._resolved = (job, jobargs)

    def run(self, task: Any, job: Any, **jobargs: Any) -> None:
        self.resolve(task, job, jobargs)
        params = self["params"]
        stage_key = "reduce" if task.stage == "reduce" else "map"
        external = None
        if task.stage not in _SHUFFLE_STAGES and isinstance(self[stage_key], dict):
            # An external program (library.md 10.5) stands in for map or reduce.
            external = _external_module()
            params = self["ext_params"]
            external.prepare(self[stage_key], params, "ext.%s" % stage_key)
            self[stage_key] = external.ext_map if stage_key == "map" else external.ext_reduce
        try:
            self._inject(task)
            if task.stage == "map":
                self.map(task, params)
            elif task.stage == "reduce":
                self.reduce(task, params)
            elif task.stage in _SHUFFLE_STAGES:
                self.shuffle(task, params)
            else:
                raise DiscoError("The classic worker has no stage %r" % task.stage)
            if external is not None:
                external.close_ext(check=True)  # a late **<ERR> or exit status fails the task
        finally:
            if external is not None:
                external.close_ext()

    def map(self, task: Any, params: Any) -> None:
        """Map task (library.md 17.3)."""
        if self["save_results"] and self["partitions"] and not self["reduce"]:
            raise NotImplementedError("Storing partitioned outputs in DDFS is not yet supported")
        # after the last entry only the outputs' close and ``end`` follow (no combiner,
        # no external program): the last MSG may go in DONE's write
        last_held = not self["combiner"] and (
            getattr(self["map"], "__module__", None) != "disco.worker.classic.external"
        )
        entries = self.status_iter(
            self.input(task, open=self.opener("map", "in", params)),
            "%s entries mapped",
            hold_last=last_held,
        )
        writers: dict[Any, Any] = {}

        def writer(part: Any) -> Any:
            if part not in writers:
                output = self.output(task, part, open=self.opener("map", "out", params))
                writers[part] = output.file.fds[-1]
            return writers[part]

        self["map_init"](entries, params)
        pairs = builtins.map(self["map"], entries, itertools.repeat(params))  # per entry
        run_map(pairs, writer, self["partition"], self["partitions"], self["combiner"], params)

    def shuffle(self, task: Any, params: Any) -> None:
        """A shuffle stage (``map_shuffle``, ``reduce_shuffle``): ``shuffle_<grouping>``."""
        inputs = list(self.get_inputs())
        grouping = getattr(task, "grouping", None) or "group_node"
        method = getattr(self, "shuffle_" + grouping, None)
        if method is None:
            raise DiscoError("The classic worker cannot shuffle with grouping %r" % grouping)
        method(task, params, inputs)

    def shuffle_group_node(self, task: Any, params: Any, inputs: list[Any]) -> None:
        """Concatenate this node's inputs per label (library.md 17.4)."""
        labelled = self.labelled_input_map(task, inputs)
        for label in sorted(labelled):
            path, _size = self.concat_input(task, label, labelled[label])
            self.outputs[label] = BaseOutput((path, "part", label))
        self.send("MSG", "Shuffled %d inputs into %d label(s)" % (len(inputs), len(labelled)))

    def reduce_input(self, task: Any, params: Any) -> Iterable[Any]:
        """The records the reduce reads (library.md 17.5 steps 1 to 4): this task's
        partition of its inputs, in random input order, sorted when ``sort``."""
        import random

        inputs = [i for i in self.get_inputs()]
        located = [(i.label, i.locations) for i in inputs]
        located = [(label, urls) for label, urls in located if urls]
        if located and all(u.startswith("dir://") for _, urls in located for u in urls):
            # Only this task's partition: the input's label, or the task's for "all".
            urls_lists = [
                [url]
                for label, urls in located
                for entry_label, url, _size in read_index(urls[0], task)
                if entry_label == (task.group_label if label == "all" else label)
            ]
        else:
            urls_lists = [urls for _, urls in located]
        random.shuffle(urls_lists)
        entries = SerialInput(urls_lists, task=task, open=self.opener("reduce", "in", params))
        return self.sort(entries, task)

    def sort(self, input: Iterable[Any], task: Any) -> Iterable[Any]:
        """``input`` sorted by key on disk (``util.disk_sort``) when ``sort``, else as is."""
        if not self["sort"]:
            return input
        from disco import util

        return util.disk_sort(
            self, input, task.path("sort.dl"), sort_buffer_size=self["sort_buffer_size"]
        )

    def opener(self, mode: str, direction: str, params: Any) -> Any:
        """``open(url)`` through the ``<mode>_input_stream`` chain plus ``<mode>_reader``
        (``direction`` ``'in'``) or the ``<mode>_output_stream`` chain (``'out'``)."""
        if direction == "in":
            streams = _streams(self["%s_input_stream" % mode]) + _streams(self["%s_reader" % mode])
        else:
            streams = _streams(self["%s_output_stream" % mode])
        return self._opener(streams, params)

    def reduce(self, task: Any, params: Any) -> None:
        """Reduce task (library.md 17.5)."""
        from disco import util

        fn_reduce = self["reduce"]
        entries = self.reduce_input(task, params)
        out = self.output(task, None, open=self.opener("reduce", "out", params)).file.fds[-1]
        entries = self.status_iter(entries, "%s entries reduced")
        self["reduce_init"](entries, params)
        if util.argcount(fn_reduce) < 3:
            for key, value in fn_reduce(entries, params):
                try:
                    out.add(key, value)
                except UNSERIALIZABLE as e:
                    raise output_error("reduce", key, value, e) from e
        else:
            fn_reduce(entries, _CheckedOutput(out), params)

    # -- helpers ----------------------------------------------------------------------------
    def status_iter(
        self, iterator: Iterable[Any], template: str, hold_last: bool = False
    ) -> Iterator[Any]:
        """Pass items through, sending ``template % n`` every ``status_interval`` items
        and ``"Done: " + template % n`` at the end (held for DONE's write if
        ``hold_last`` and ``protocol._done_follows``)."""
        interval = self["status_interval"]
        n = 0
        for n, item in enumerate(iterator, 1):
            if interval and n % interval == 0:
                self.message(template % n)
            yield item
        if hold_last and _protocol._done_follows and _protocol._held is None:
            _protocol._held = []  # ``WorkerProtocol.hold``, inline: no other function to touch
        self.message("Done: " + template % n)

    @staticmethod
    def _opener(streams: list[Any], params: Any) -> Any:
        from disco.worker.task_io import StreamCombiner

        def open(url: str) -> Any:
            return StreamCombiner(url, streams, params)

        return open

    def _inject(self, task: Any) -> None:
        """Give the job's functions the names of library.md 10.4."""
        plan = getattr(self, "_inject_plan", None)
        if plan is not None and plan[0] == [id(v) for v in self.values()]:
            # The warm process gave them the names that do not depend on the task.
            names = task_names(task)
            for module_globals, keys in plan[1]:
                for key in keys:
                    module_globals[key] = names[key]
            return
        names = injected_names(task, self.get("required_modules") or ())
        for module_globals in _globals_of(list(self.values())):
            for key, value in names.items():
                module_globals.setdefault(key, value)

    def _plan_inject(self, values: dict[str, Any]) -> None:
        """In a warm process, with ``values`` what ``resolve`` will make this dict:
        ``setdefault`` the names that do not depend on the task into the globals of the
        job's functions now, and remember which task names each of them lacks (what a
        task then sets: the same globals as injecting every name per task)."""
        static = static_names(values.get("required_modules") or ())
        task_keys = [key for key in TASK_NAMES if key not in static]
        plan = []
        for module_globals in _globals_of(list(values.values())):
            plan.append((module_globals, [k for k in task_keys if k not in module_globals]))
            for key, value in static.items():
                module_globals.setdefault(key, value)
        self._inject_plan = ([id(v) for v in values.values()], plan)


def _plain_resolve(worker: Any) -> bool:
    """Does ``worker`` resolve its parameters as ``TaskRunner.resolve`` with the base
    ``getitem`` does (which only reads the job's arguments and attributes)?"""
    from disco.worker.base import Worker as BaseWorker
    from disco.worker.taskrun import TaskRunner

    cls = type(worker)
    return cls.getitem is BaseWorker.getitem and cls.resolve is TaskRunner.resolve


class _CheckedOutput:
    """The output a 3-argument reduce writes to: failed writes become ``OutputError``."""

    def __init__(self, out: Any) -> None:
        self._out = out

    def add(self, key: Any, value: Any) -> None:
        try:
            self._out.add(key, value)
        except UNSERIALIZABLE as e:
            raise output_error("reduce", key, value, e) from e

    def __getattr__(self, name: str) -> Any:
        return getattr(self._out, name)


def task_names(task: Any) -> dict[str, Any]:
    """The injected names (``TASK_NAMES``) of ``task``."""
    return {
        "Task": task,
        "get": task.get,
        "put": task.put,
        "this_name": lambda: task.jobname,
        "this_master": lambda: task.master,
        "this_host": lambda: task.host,
        "this_partition": lambda: task.group_label,
    }


def static_names(required_modules: Iterable[Any]) -> dict[str, Any]:
    """The injected names that are the same for every task (the names of
    ``classic.func``, the helpers, ``required_modules``); a name here is never a task's."""
    import disco.worker
    from disco import util
    from disco.worker.classic import func

    stubs = _STUBS | getattr(func, "STUB_NAMES", frozenset())
    names = {
        k: v
        for k, v in vars(func).items()
        if not k.startswith("_")
        and k not in stubs
        and k not in TASK_NAMES
        and not hasattr(builtins, k)
    }
    names.update(
        {
            "this_inputs": this_inputs,
            "Params": Params,
            "Worker": Worker,
            "util": util,
            "worker": disco.worker,
            "os": os,
            "sys": sys,
            "JOBPACK_VERSION1": JOBPACK_VERSION1,
        }
    )
    try:
        from disco.worker.classic import external

        names["external"] = external
    except ImportError:
        pass
    for module in required_modules:
        name, path = module if isinstance(module, (tuple, list)) else (module, None)
        names[name.rsplit(".", 1)[-1]] = _import(name, path)
    return names


def injected_names(task: Any, required_modules: Iterable[Any]) -> dict[str, Any]:
    """The names job functions see (library.md 10.4), for ``task``."""
    static = static_names(required_modules)
    names = {k: v for k, v in task_names(task).items() if k not in static}
    names.update(static)
    return names


# -- 0.5's helpers for job code (library.md 10.4), about the task running in this process --
def current_task() -> Any:
    """The ``disco.task.Task`` this worker process runs (``disco.worker.active_task``)."""
    import disco.worker

    task = disco.worker.active_task
    if task is None:
        raise DiscoError(
            "get, put and the this_* helpers work only inside a task: no task runs in this process"
        )
    return task


def get(key: str) -> bytes | None:
    """The OOB value ``key`` of this job: ``Task.get``."""
    return current_task().get(key)


def put(key: str, value: bytes) -> None:
    """Store the OOB value ``key`` of this job: ``Task.put``."""
    current_task().put(key, value)


def this_name() -> str:
    """The name of the running job."""
    return current_task().jobname


def this_master() -> str:
    """The master URL of the running job."""
    return current_task().master


def this_host() -> str:
    """The node that runs this task."""
    return current_task().host


def this_partition() -> Any:
    """The task's label: the partition in a reduce, the input's label in a map."""
    return current_task().group_label


def this_inputs() -> list[list[str]]:
    """Replica URL lists of the task's inputs (asks the master)."""
    import disco.worker

    return [i.locations for i in disco.worker.Worker.get_inputs()]


def _import(name: str, path: str | None) -> Any:
    """Import a required module by name, or from its shipped file in the job home."""
    import importlib

    try:
        return importlib.import_module(name)
    except ImportError:
        if not path:
            raise
    import importlib.util

    location = path.lstrip("/")
    spec = importlib.util.spec_from_file_location(name, location)
    if spec is None or spec.loader is None:
        raise ImportError("Cannot import required module %s from %s" % (name, location))
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _globals_of(values: Iterable[Any]) -> list[dict[str, Any]]:
    """The globals of every function reachable from ``values`` (in lists, tuples, sets,
    dicts, ``Params``, bound methods and partials), Disco's own functions left out."""
    found: list[dict[str, Any]] = []
    known: set[int] = set()
    seen: set[int] = set()
    todo = list(values)
    while todo:
        obj = todo.pop(0)
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, (list, tuple, set, frozenset)):
            todo[0:0] = list(obj)
        elif isinstance(obj, dict):
            todo[0:0] = list(obj.values())
        elif isinstance(obj, Params):
            todo[0:0] = list(vars(obj).values())
        elif hasattr(obj, "__func__"):  # bound method
            todo.insert(0, obj.__func__)
        elif hasattr(obj, "func") and hasattr(obj, "keywords"):  # functools.partial
            todo[0:0] = [obj.func, obj.args, obj.keywords]
        else:
            module = getattr(obj, "__module__", None) or ""
            if module == "disco" or module.startswith("disco."):
                continue  # Disco's own functions never read injected names
            module_globals = getattr(obj, "__globals__", None)
            if isinstance(module_globals, dict) and id(module_globals) not in known:
                known.add(id(module_globals))
                found.append(module_globals)
    return found


def _globalize(obj: Any, names: dict[str, Any], seen: set[int] | None = None) -> None:
    """``setdefault`` ``names`` into the globals of every function reachable from ``obj``."""
    for module_globals in _globals_of([obj]):
        for key, value in names.items():
            module_globals.setdefault(key, value)


def _external_module() -> Any:
    try:
        from disco.worker.classic import external
    except ImportError as e:
        raise DiscoError(
            "map/reduce given as a dict means an external program, but "
            "disco.worker.classic.external is not available: %s" % e
        )
    return external


if __name__ == "__main__":
    Worker.main()
