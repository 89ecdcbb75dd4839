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


def test_a_kernel_copy_that_fails_midway_is_finished_through_python(
    tmp_path: Path, source: Path
) -> None:
    """The first call copies a part, the second fails (as across file systems on an old
    kernel): the rest is copied the usual way, nothing twice and nothing lost."""
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
            copy_url(str(source), out)
            out.write(b"tail")
    assert len(calls) == 2
    assert out_path.read_bytes() == b"head" + source.read_bytes() + b"tail"
