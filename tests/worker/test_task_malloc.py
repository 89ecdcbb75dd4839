"""A task's C heap (``disco.worker.taskrun.tune_malloc``): buffers of a few MiB come from
the heap, where a freed one is reused by the next, instead of a new mapping each."""

from __future__ import annotations

import pytest

from disco.core import Job, result_iterator

pytestmark = pytest.mark.timeout(120)


def heap_map(entry, params):
    import ctypes

    def in_heap(size):
        buf = bytearray(size)
        view = (ctypes.c_char * size).from_buffer(buf)
        address = ctypes.addressof(view)
        del view
        with open("/proc/self/maps") as f:  # the heap may show as several ranges
            for line in f:
                if line.rstrip().endswith("[heap]"):
                    low, high = (int(x, 16) for x in line.split()[0].split("-"))
                    if low <= address < high:
                        return True
        return False

    # 1 MiB (an inflated hunk), 8 MiB (a block read); 48 MiB stays a mapping of its own
    yield entry, [in_heap(1 << 20), in_heap(8 << 20), in_heap(48 << 20)]


def test_a_task_takes_buffers_of_a_few_mib_from_the_heap(master) -> None:
    job = Job(master=master.url).run(input=["raw://a", "raw://b"], map=heap_map)
    got = dict(result_iterator(job.wait(timeout=60)))
    assert got == {"a": [True, True, False], "b": [True, True, False]}
