"""``copy_url`` of a local file: appended in the kernel (``os.copy_file_range``) when the
output is a regular file, else copied through Python; either way the output holds what
it held, then the file's bytes, and its position is after them (issue 13: the sort's
client concatenates its outputs this way)."""

from __future__ import annotations

import io
import os
import threading
from pathlib import Path

import pytest

from disco.worker import copy_url


@pytest.fixture
def source(tmp_path: Path) -> Path:
    path = tmp_path / "part"
    path.write_bytes(os.urandom(3 << 20) + b"end\n")
    return path


def test_appended_to_a_regular_file_in_the_kernel(tmp_path: Path, source: Path) -> None:
    calls = []
    real = os.copy_file_range

    def counting(*args: int) -> int:
        calls.append(args)
        return real(*args)

    out_path = tmp_path / "out"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(os, "copy_file_range", counting)
        with open(out_path, "wb") as out:
            out.write(b"head")  # still in the buffer: flushed first
            copy_url(str(source), out)
            assert out.tell() == 4 + source.stat().st_size
            copy_url("file://%s" % source, out)
            out.write(b"tail")
    assert calls  # the kernel did the copying
    data = source.read_bytes()
    assert out_path.read_bytes() == b"head" + data + data + b"tail"


def test_outputs_without_a_file_are_copied_through_python(tmp_path: Path, source: Path) -> None:
    out = io.BytesIO(b"x")
    out.seek(1)
    copy_url(str(source), out)
    assert out.getvalue() == b"x" + source.read_bytes()
    read_fd, write_fd = os.pipe()
    got = bytearray()
    with open(write_fd, "wb") as pipe_out, open(read_fd, "rb") as pipe_in:
        reader = threading.Thread(target=lambda: got.extend(pipe_in.read()))
        reader.start()
        copy_url(str(source), pipe_out)
        pipe_out.close()
        reader.join(timeout=60)
    assert bytes(got) == source.read_bytes()


@pytest.mark.parametrize("copier", ["copy_url", "append_files"])
def test_a_kernel_copy_that_fails_midway_is_finished_through_python(
    tmp_path: Path, source: Path, copier: str
) -> None:
    """The first call copies a part, the second fails (as across file systems on an old
    kernel): the rest is copied the usual way, nothing twice and nothing lost (for
    ``append_files``, of two inputs: the second one all the usual way)."""
    from disco.worker.inputs import append_files

    real = os.copy_file_range
    calls = []

    def failing_second(src: int, dst: int, count: int, *offsets: int) -> int:
        calls.append(count)
        if len(calls) == 1:
            return real(src, dst, min(count, 1 << 20), *offsets)
        raise OSError(18, "Invalid cross-device link")

    out_path = tmp_path / "out"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(os, "copy_file_range", failing_second)
        with open(out_path, "wb") as out:
            out.write(b"head")
            if copier == "copy_url":
                copy_url(str(source), out)
            else:
                append_files(out, [str(source), str(source)])
            out.write(b"tail")
    times = 1 if copier == "copy_url" else 2
    assert len(calls) >= 2  # a part copied in the kernel, then its refusal
    assert out_path.read_bytes() == b"head" + source.read_bytes() * times + b"tail"


def test_append_files_concatenates_local_files_and_others(tmp_path: Path) -> None:
    """A shuffle's concatenation (``append_files``): local files in the kernel, an input
    that is not a local file through ``copy_url``, in order, and the output's position
    and buffer right before, between and after."""
    from disco.worker.inputs import append_files

    parts = []
    for i in range(5):
        part = tmp_path / ("p%d" % i)
        part.write_bytes(os.urandom(1000 + i) if i != 2 else b"")
        parts.append(part)
    urls = [str(parts[0]), "file://%s" % parts[1], str(parts[2]), "raw://abc", str(parts[3])]
    urls.append(str(parts[4]))
    out_path = tmp_path / "out"
    with open(out_path, "wb") as out:
        out.write(b"head")  # pending in the buffer
        append_files(out, urls)
        assert out.tell() == out_path.stat().st_size
        out.write(b"tail")
    body = b"".join(p.read_bytes() for p in parts[:2]) + b"abc"
    body += b"".join(p.read_bytes() for p in parts[3:])
    assert out_path.read_bytes() == b"head" + body + b"tail"


def test_append_files_to_a_pipe_or_memory(tmp_path: Path, source: Path) -> None:
    from disco.worker.inputs import append_files

    out = io.BytesIO()
    append_files(out, [str(source), str(source)])
    assert out.getvalue() == source.read_bytes() * 2
