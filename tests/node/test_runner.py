"""The runner with real worker processes (sh scripts, one C program): master-api.md 8."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import time

import pytest

from disco.backends.base import InputEntry, Replica, TaskDone, TaskFailed, TaskOutput
from disco.node.runner import WorkerLimits, format_duration, run_worker, worker_environment
from tests.node.helpers import (
    HOST,
    JOBNAME,
    Channel,
    install_worker,
    make_spec,
    pid_alive,
    read_replies,
    wait_until,
)

pytestmark = pytest.mark.timeout(30)

HH = "82"  # hh(JOBNAME), 9.1
FAST = WorkerLimits(pid_timeout=5, message_timeout=5, last_words_timeout=2)


def line(mtype: str, payload: str) -> str:
    """A reply line as the runner must write it (length computed, 8.2)."""
    return "%s %d %s" % (mtype, len(payload.encode()), payload)


def run(tmp_path, body, channel=None, limits=FAST, environ=None, **spec_kw):
    spec = make_spec(tmp_path, **spec_kw)
    home = install_worker(spec, body)
    channel = channel or Channel()
    result = asyncio.run(run_worker(spec, channel, home, limits=limits, environ=environ))
    return result, channel, home


def test_hash_dir_of_test_job():
    import hashlib

    assert hashlib.md5(JOBNAME.encode()).hexdigest()[:2] == HH


def test_full_session(tmp_path):
    entries = [
        InputEntry(0, 0, (Replica(0, "raw://a"), Replica(1, "raw://b"))),
        InputEntry(1, "all", (Replica(0, "dir://h/x"),)),
    ]
    body = r"""
hello
send TASK '""'; recv
send INPUT '""'; recv
send INPUT '["include",[1]]'; recv
send INPUT '["exclude",[0]]'; recv
send MSG '"Done: 10 entries mapped"'; recv
send OUTPUT '[0,"3f/map:0-node1-0-5f-1/out-0",1234]'; recv
send OUTPUT '[2,"3f/map:0-node1-0-5f-1/out-2",10]'; recv
send OUTPUT '[0,"http://elsewhere:80/x",7]'; recv
send OUTPUT '[0,"3f/map:0-node1-0-5f-1/out-0b",6]'; recv
send OUTPUT '[1,"tag://t",0]'; recv
send PING '""'; recv
send DONE '""'
sleep 30
"""
    result, channel, home = run(tmp_path, body, Channel(entries))
    assert isinstance(result, TaskDone), result
    replies = read_replies(home)
    assert replies[0] == 'OK 4 "ok"'
    ttype, tlen, tjson = replies[1].split(" ", 2)
    assert ttype == "TASK" and int(tlen) == len(tjson.encode())
    assert json.loads(tjson) == {
        "taskid": 3,
        "master": "http://master:8989",
        "disco_port": 8989,
        "put_port": 8990,
        "ddfs_data": str(tmp_path / "ddfs"),
        "disco_data": str(tmp_path / "data"),
        "stage": "map",
        "grouping": "split",
        "group": [0, HOST],
        "jobfile": os.path.join(home, "jobfile"),
        "jobname": JOBNAME,
        "host": HOST,
    }
    assert list(json.loads(tjson)) == [  # field order of 8.4
        "taskid", "master", "disco_port", "put_port", "ddfs_data", "disco_data",
        "stage", "grouping", "group", "jobfile", "jobname", "host",
    ]  # fmt: skip
    assert replies[2] == (
        line(
            "INPUT",
            '["done",[[0,"ok",0,[[0,"raw://a"],[1,"raw://b"]]],[1,"ok","all",[[0,"dir://h/x"]]]]]',
        )
    )
    assert replies[3] == line("INPUT", '["done",[[1,"ok","all",[[0,"dir://h/x"]]]]]')
    assert replies[4] == replies[3]
    assert replies[5:10] == ['OK 4 "ok"'] * 5
    assert replies[10:] == ['OK 4 "ok"', 'OK 6 "pong"']
    assert channel.input_requests == [("all", []), ("include", [1]), ("exclude", [0])]

    # the index file, byte for byte (8.6, library.md 16.3)
    index_files = os.listdir(os.path.join(home, ".disco"))
    assert len(index_files) == 1
    name = index_files[0]
    match = re.fullmatch(r"map-3-(\d+)\.results", name)
    assert match and abs(int(match.group(1)) / 1e6 - time.time()) < 60
    base = "disco://node1/disco/node1/%s/%s/3f/map:0-node1-0-5f-1/" % (HH, JOBNAME)
    with open(os.path.join(home, ".disco", name), "rb") as f:
        assert f.read() == (
            b"0 " + base.encode() + b"out-0 1234\n"
            b"2 " + base.encode() + b"out-2 10\n"
            b"0 " + base.encode() + b"out-0b 6\n"
        )
    assert result.outputs == (
        TaskOutput(
            kind="dir",
            url="dir://node1/disco/node1/%s/%s/.disco/%s" % (HH, JOBNAME, name),
            label=0,
            size=1250,
            labels=((0, 1240), (2, 10)),
        ),
        TaskOutput(kind="data", url="http://elsewhere:80/x", label=0, size=7),
        TaskOutput(kind="data", url="tag://t", label=1, size=0),
    )
    assert channel.events[0] == "MSG: [map:3] Done: 10 entries mapped"
    assert re.fullmatch(r"DONE: \[map:3\] Task finished in 0:00:0\d\.\d\d\d", channel.events[1])
    assert len(channel.events) == 2
    assert 0 < result.duration < 30


def test_no_local_outputs_means_no_index(tmp_path):
    body = "hello\nsend OUTPUT '[5,\"disco://h/x\",3]'; recv\nsend DONE '\"\"'\nsleep 30\n"
    result, _, home = run(tmp_path, body)
    assert result == TaskDone(
        outputs=(TaskOutput(kind="data", url="disco://h/x", label=5, size=3),),
        duration=result.duration,
    )
    assert not os.path.exists(os.path.join(home, ".disco"))


def test_save_results_that_cannot_be_uploaded_fail_the_attempt(tmp_path):
    # With save_results the local outputs become DDFS blobs at DONE (ddfs.md 7.2); here
    # there is no DDFS to store them, so the attempt fails and will be retried.  Saving
    # that works is tested with a real master in tests/e2e/test_ddfs_jobs.py.
    body = "hello\nsend OUTPUT '[1,\"ab/f\",3]'; recv\nsend DONE '\"\"'\nsleep 30\n"
    result, _, _ = run(tmp_path, body, save_results=True)
    assert isinstance(result, TaskFailed) and result.kind == "error"
    assert result.message.startswith("Could not save the results in DDFS: ")


def test_absolute_output_path_fails_the_attempt(tmp_path):
    body = "hello\nsend OUTPUT '[0,\"/etc/passwd\",3]'; recv\nsleep 30\n"
    result, _, _ = run(tmp_path, body)
    assert isinstance(result, TaskFailed) and result.kind == "error"
    assert "/etc/passwd" in result.message


def test_done_kills_the_worker_and_its_children(tmp_path):
    body = "hello\nsleep 30 &\necho $! > child.pid\necho $$ > worker.pid\nsend DONE '\"\"'\nwait\n"
    started = time.monotonic()
    result, _, home = run(tmp_path, body)
    assert isinstance(result, TaskDone)
    assert time.monotonic() - started < 20  # not the child's 30 s (generous margin)
    for name in ("child.pid", "worker.pid"):
        with open(os.path.join(home, name)) as f:
            pid = int(f.read())
        wait_until(lambda pid=pid: not pid_alive(pid), 2, "pid %d to die" % pid)


def test_input_replies_keep_request_order_when_deferred(tmp_path):
    # INPUT is deferred until the master sees the worker's next MSG; the OK for that
    # MSG must still come after the INPUT reply (8.3: replies in request order).
    entries = [InputEntry(0, 0, (Replica(0, "raw://a"),))]
    channel = Channel(entries)

    async def main():
        channel.release.clear()
        channel.on_event = lambda text: channel.release.set()
        spec = make_spec(tmp_path)
        home = install_worker(spec, body)
        return await run_worker(spec, channel, home, limits=FAST), home

    body = "hello\nsend INPUT '\"\"'\nsend MSG '\"x\"'\nrecv\nrecv\nsend DONE '\"\"'\nsleep 30\n"
    result, home = asyncio.run(main())
    assert isinstance(result, TaskDone), result
    assert read_replies(home)[1:] == [
        line("INPUT", '["done",[[0,"ok",0,[[0,"raw://a"]]]]]'),
        'OK 4 "ok"',
    ]


def test_input_err_retry_and_fail(tmp_path):
    body = "hello\nsend INPUT_ERR '[0,[0,2]]'; recv\nsend ERROR '\"gave up\"'\nsleep 30\n"
    channel = Channel(retry=[Replica(1, "raw://b"), Replica(3, "raw://d")])
    result, channel, home = run(tmp_path, body, channel)
    assert read_replies(home)[1] == line("RETRY", '[[1,"raw://b"],[3,"raw://d"]]')
    assert channel.input_errors == [(0, [0, 2])]
    assert result == TaskFailed("error", "gave up")

    result, channel, home = run(tmp_path / "2", body, Channel(retry=None))
    assert read_replies(home)[1] == 'FAIL 2 ""'


def test_error_and_fatal(tmp_path):
    result, channel, _ = run(tmp_path, "hello\nsend ERROR '\"Traceback:\\nboom\"'\nsleep 30\n")
    assert result == TaskFailed("error", "Traceback:\nboom")
    assert channel.events == []
    result, _, _ = run(tmp_path / "2", "hello\nsend FATAL '\"no way\"'\nsleep 30\n")
    assert result == TaskFailed("fatal", "no way")


@pytest.mark.parametrize(
    "line, message",
    [
        ('send WORKER \'{"version":"1.0","pid":1}\'', "Invalid worker version: 1.0"),
        ("send HELLO '\"\"'", "Unknown message type from worker: HELLO"),
        ("send MSG '[1]'", "Invalid payload for MSG message: [1]"),
        ("send OUTPUT '[0,\"a\"]'", 'Invalid payload for OUTPUT message: [0,"a"]'),
        ("send MSG 'oops'", "Invalid JSON payload in MSG message: oops"),
    ],
)
def test_protocol_violations_are_fatal(tmp_path, line, message):
    result, _, _ = run(tmp_path, line + "\nsleep 30\n")
    assert result == TaskFailed("fatal", message)


def test_no_output_at_all(tmp_path):
    limits = WorkerLimits(pid_timeout=0.3)
    started = time.monotonic()
    result, _, _ = run(tmp_path, "echo $$ > worker.pid\nexec sleep 30\n", limits=limits)
    assert result == TaskFailed("error", "Worker did not send its PID in 0.3 seconds")
    assert time.monotonic() - started < 20  # not the worker's 30 s (generous margin)
    assert WorkerLimits().pid_timeout == 30
    assert "in 30 seconds" in "Worker did not send its PID in %g seconds" % 30.0


def test_stuck_in_the_middle_of_a_message(tmp_path):
    limits = WorkerLimits(message_timeout=0.3)
    result, _, _ = run(tmp_path, "hello\nprintf 'MSG 10 \"ab'\nexec sleep 30\n", limits=limits)
    assert result == TaskFailed("error", "Worker stuck in the middle of a message")


def test_silence_between_messages_is_fine(tmp_path):
    limits = WorkerLimits(pid_timeout=0.2, message_timeout=0.2)
    body = "hello\nsleep 0.6\nsend DONE '\"\"'\nsleep 30\n"
    result, _, _ = run(tmp_path, body, limits=limits)
    assert isinstance(result, TaskDone)


def test_unparsable_stream_collects_last_words(tmp_path):
    body = (
        "hello\necho 'Traceback (most recent call last):'\necho '  File \"x.py\", line 1'\nexit 1\n"
    )
    result, channel, _ = run(tmp_path, body)
    assert result == TaskFailed(
        "error",
        "WorkerExit: the worker process exited with code 1 before the task finished\n"
        "  in map task 3 on node1 (attempt 1)\n"
        "Last output of the worker:\n"
        'Traceback (most recent call last):\n  File "x.py", line 1',
    )
    assert result.failure is not None and result.failure.kind == "exit"
    assert channel.events == [
        "WARNING: [map:3] Could not parse worker event: invalid_length",
        "WARNING: [map:3] Worker crashed! (exit code: 1)",
    ]


def test_unparsable_stream_worker_does_not_exit(tmp_path):
    limits = WorkerLimits(last_words_timeout=0.3)
    body = "echo garbage_garbage_garbage\nexec sleep 30\n"
    result, channel, _ = run(tmp_path, body, limits=limits)
    assert result.kind == "error"
    assert result.message.endswith("\nWorker died. Last words:\ngarbage_garbage_garbage\n")
    # the reason is the parse error (jobinfo, events), not how the worker ended
    assert result.failure is not None and result.failure.kind == "protocol"
    assert result.message.startswith(
        "ProtocolError: Could not parse worker event: invalid_type: the worker wrote output "
        "that is not a protocol message (8.2)\n  in map task 3 on node1 (attempt 1)\n"
    )
    assert channel.events == [
        "WARNING: [map:3] Could not parse worker event: invalid_type",
        "WARNING: [map:3] Worker did not exit properly after error",
    ]


def test_last_words_are_capped(tmp_path):
    limits = WorkerLimits(last_words_bytes=1000, last_words_timeout=5)
    body = (
        "i=0\nwhile [ $i -lt 500 ]; do echo 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx'; i=$((i+1)); done\n"
    )
    body += "exec sleep 30\n"
    result, channel, _ = run(tmp_path, body, limits=limits)
    assert isinstance(result, TaskFailed) and result.kind == "error"
    prefix = "Worker died. Last words:\n"
    words = result.message[result.message.index(prefix) :]
    assert result.message.startswith("ProtocolError: ") and words.endswith("...")
    assert len(words) == len(prefix) + 1000 + 3
    # the cap was reached before the worker exited
    assert channel.events[-1] == "WARNING: [map:3] Worker did not exit properly after error"


def test_framing_error_then_clean_exit_reports_the_parse_error(tmp_path):
    # issue 8.3: was "WorkerExit: ... exited with code 0" in jobinfo
    result, channel, _ = run(tmp_path, "hello\necho 'not_a_message_at_all'\nexit 0\n")
    assert result.kind == "error"  # 8.8: recoverable, as in 0.5
    assert result.failure is not None and result.failure.kind == "protocol"
    assert result.failure.headline == (
        "ProtocolError: Could not parse worker event: invalid_type: the worker wrote "
        "output that is not a protocol message (8.2)"
    )
    assert result.message.startswith(result.failure.headline + "\n")
    assert "not_a_message_at_all" in result.failure.output_tail
    assert channel.events == [
        "WARNING: [map:3] Could not parse worker event: invalid_type",
        "WARNING: [map:3] Worker crashed! (exit code: 0)",
    ]


def test_invalid_message_is_fatal_with_its_reason(tmp_path):
    result, _, _ = run(tmp_path, "send BOGUS '\"\"'\nexec sleep 30\n")
    assert result.kind == "fatal"
    assert result.failure is not None and result.failure.kind == "protocol"
    assert result.failure.headline == "ProtocolError: Unknown message type from worker: BOGUS"


@pytest.mark.parametrize(
    "script, code",
    [("#!/nonexistent/interpreter\n", 127), ("not executable\n", 126)],
)
def test_worker_that_cannot_start_is_fatal(tmp_path, script, code):
    """A broken job home (the worker cannot be executed): the job fails at once."""
    spec = make_spec(tmp_path)
    home = install_worker(spec, script, prelude=False)
    if code == 126:
        os.chmod(os.path.join(home, spec.worker), 0o644)
    result = asyncio.run(run_worker(spec, Channel(), home, limits=FAST))
    assert result.kind == "fatal", result
    assert result.failure is not None and result.failure.kind == "jobpack"
    assert result.failure.headline == (
        "WorkerStartError: the worker %r could not be started (exit code %d of /bin/sh)"
        % (spec.worker, code)
    )


def test_exit_127_after_the_protocol_started_is_a_crash(tmp_path):
    result, _, _ = run(tmp_path, "hello\nexit 127\n")
    assert result.kind == "error" and result.failure is not None
    assert result.failure.kind == "exit"


@pytest.mark.parametrize("code", [0, 3])
def test_exit_before_done_without_output(tmp_path, code):
    result, channel, _ = run(tmp_path, "hello\nexit %d\n" % code)
    assert result.kind == "error" and result.message.startswith(
        "WorkerExit: the worker process exited with code %d before the task finished\n" % code
    )
    assert result.message.endswith("\nWorker died without output")
    assert channel.events == ["WARNING: [map:3] Worker crashed! (exit code: %d)" % code]


def test_exit_mid_message_reports_partial_output(tmp_path):
    result, channel, _ = run(tmp_path, "hello\nprintf 'MSG 100 \"half'\nexit 2\n")
    assert result.kind == "error"
    assert result.message.endswith('Last output of the worker:\nMSG 100 "half')
    assert channel.events == ["WARNING: [map:3] Worker crashed! (exit code: 2)"]


def test_killed_by_signal_reports_shell_exit_code(tmp_path):
    result, channel, _ = run(tmp_path, "hello\nkill -9 $$\n")
    assert result.message.startswith(
        "WorkerKilled: the worker process was killed by signal 9 (SIGKILL)\n"
    )
    assert result.failure is not None and result.failure.kind == "signal"
    assert channel.events == ["WARNING: [map:3] Worker crashed! (exit code: 137)"]


def test_missing_worker_executable(tmp_path):
    spec = make_spec(tmp_path)
    home = install_worker(spec, "")
    os.remove(os.path.join(home, spec.worker))
    channel = Channel()
    result = asyncio.run(run_worker(spec, channel, home, limits=FAST))
    # a broken job home: the same on every node, the job fails at once (issue 8.3)
    assert isinstance(result, TaskFailed) and result.kind == "fatal"
    assert result.message.startswith(
        "WorkerStartError: the worker 'bin/worker' could not be started (exit code 127"
    )
    assert "bin/worker" in result.message
    assert "No such file or directory" in result.message
    assert channel.events == [
        "WARNING: [map:3] Could not parse worker event: invalid_length",
        "WARNING: [map:3] Worker crashed! (exit code: 127)",
    ]


def test_msg_rate_limit_kills_a_chatty_worker(tmp_path):
    body = "hello\ni=0\nwhile [ $i -lt 20 ]; do send MSG '\"line\"'; recv; i=$((i+1)); done\n"
    body += "send DONE '\"\"'\nsleep 30\n"
    started = time.monotonic()
    result, channel, home = run(tmp_path, body)
    elapsed = time.monotonic() - started
    assert result == TaskFailed(
        "fatal", "Worker is behaving badly: Sent 10 events in a second, ignoring replies."
    )
    assert channel.events == ["MSG: [map:3] line"] * 9
    # replies 6..9 were delayed 200 ms each (8.9)
    assert elapsed >= 0.8
    assert read_replies(home)[1:] == ['OK 4 "ok"'] * 9


def test_msg_rate_limit_slows_replies(tmp_path):
    body = 'hello\ni=0\nwhile [ $i -lt 7 ]; do send MSG "\\"$i\\""; recv; i=$((i+1)); done\n'
    body += "send DONE '\"\"'\nsleep 30\n"
    started = time.monotonic()
    result, channel, _ = run(tmp_path, body)
    assert isinstance(result, TaskDone), result
    assert time.monotonic() - started >= 0.4  # MSGs 6 and 7 were delayed
    assert channel.events[:7] == ["MSG: [map:3] %d" % i for i in range(7)]


def test_cancel_kills_the_process_group_within_a_second(tmp_path):
    body = (
        "hello\nsleep 30 &\necho $! > child.pid\necho $$ > worker.pid\n"
        "send INPUT '\"\"'\nrecv\nwait\n"
    )
    spec = make_spec(tmp_path)
    home = install_worker(spec, body)
    channel = Channel()
    channel.release.clear()  # the INPUT request stays deferred

    async def main():
        task = asyncio.create_task(run_worker(spec, channel, home, limits=FAST))
        while not channel.input_requests:
            await asyncio.sleep(0.01)
        started = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return time.monotonic() - started

    assert asyncio.run(main()) < 1.0
    assert channel.cancelled_inputs == 1
    for name in ("child.pid", "worker.pid"):
        with open(os.path.join(home, name)) as f:
            pid = int(f.read())
        wait_until(lambda pid=pid: not pid_alive(pid), 1, "pid %d to die" % pid)


def test_environment_cwd_and_niceness(tmp_path):
    environ = {
        "PATH": os.environ["PATH"],
        "KEEP_ME": "1",
        "DISCO_PORT": "1",
        "DDFS_DATA": "/x",
        "DISCO_SETTINGS": "DISCO_PORT,MY_OWN_SETTING",
        "MY_OWN_SETTING": "x",
        "DISCO_LOCAL_CLUSTER": "1",
        "DISCO_MASTER_PID": "/run/x",
        "PYTHONPATH": "/nope",
    }
    body = "env > env.txt\npwd > cwd.txt\nnice > nice.txt\nhello\nsend DONE '\"\"'\nsleep 30\n"
    jobenvs = {"PYTHONPATH": "lib", "LD_LIBRARY_PATH": "lib"}
    result, _, home = run(tmp_path, body, environ=environ, jobenvs=jobenvs)
    assert isinstance(result, TaskDone), result
    with open(os.path.join(home, "env.txt")) as f:
        env = dict(line.split("=", 1) for line in f.read().splitlines() if "=" in line)
    assert env["KEEP_ME"] == "1"
    assert env["PYTHONPATH"] == "lib" and env["LD_LIBRARY_PATH"] == "lib"
    assert env["DISCO_WORKER_PYTHON"] == sys.executable
    for name in ("DISCO_PORT", "DDFS_DATA", "DISCO_SETTINGS", "MY_OWN_SETTING"):
        assert name not in env
    assert "DISCO_LOCAL_CLUSTER" not in env and "DISCO_MASTER_PID" not in env
    with open(os.path.join(home, "cwd.txt")) as f:
        assert os.path.realpath(f.read().strip()) == os.path.realpath(home)
    with open(os.path.join(home, "nice.txt")) as f:
        assert f.read().strip() == "19"


def test_worker_environment_defaults_to_os_environ(monkeypatch):
    monkeypatch.setenv("DISCO_DATA", "/somewhere")
    monkeypatch.setenv("SOMETHING_ELSE", "y")
    env = worker_environment({"A": "b"})
    assert "DISCO_DATA" not in env and env["SOMETHING_ELSE"] == "y" and env["A"] == "b"


def test_format_duration():
    assert format_duration(0) == "0:00:00.000"
    assert format_duration(1.2345) == "0:00:01.234" or format_duration(1.2345) == "0:00:01.235"
    assert format_duration(3 * 3600 + 62.5) == "3:01:02.500"
    assert format_duration(30 * 3600) == "30:00:00.000"


C_WORKER = r"""
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static void send(const char *type, const char *payload) {
    printf("%s %zu %s\n", type, strlen(payload), payload);
    fflush(stdout);
}

static int recv(char *buf, size_t n) {
    return fgets(buf, (int)n, stdin) != NULL;
}

int main(void) {
    char hello[64], line[4096];
    FILE *out;
    snprintf(hello, sizeof hello, "{\"version\":\"1.1\",\"pid\":%d}", (int)getpid());
    send("WORKER", hello);
    if (!recv(line, sizeof line)) return 1;
    send("TASK", "\"\"");
    if (!recv(line, sizeof line)) return 1;
    out = fopen("c-task.txt", "w");
    fputs(line, out);
    fclose(out);
    out = fopen("c-out", "w");
    fputs("hello from C\n", out);
    fclose(out);
    send("OUTPUT", "[7,\"c-out\",13]");
    if (!recv(line, sizeof line)) return 1;
    send("DONE", "\"\"");
    pause();
    return 0;
}
"""


@pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler")
def test_c_worker(tmp_path):
    spec = make_spec(tmp_path)
    home = install_worker(spec, "", prelude=False)
    src = tmp_path / "worker.c"
    src.write_text(C_WORKER)
    subprocess.run(["cc", "-o", os.path.join(home, spec.worker), str(src)], check=True)
    result = asyncio.run(run_worker(spec, Channel(), home, limits=FAST))
    assert isinstance(result, TaskDone), result
    with open(os.path.join(home, "c-task.txt")) as f:
        assert json.loads(f.read().split(" ", 2)[2])["jobname"] == JOBNAME
    (output,) = result.outputs
    assert output.kind == "dir" and output.labels == ((7, 13),)
    index = os.path.join(home, ".disco", output.url.rsplit("/", 1)[1])
    with open(index, "rb") as f:
        assert f.read() == b"7 disco://node1/disco/node1/%s/%s/c-out 13\n" % (
            HH.encode(),
            JOBNAME.encode(),
        )


class NowChannel(Channel):
    """A channel that answers INPUT at once when it can (as the master's own does,
    ``AttemptChannel.inputs_now``); ``None`` from ``now`` defers to ``get_inputs``."""

    def __init__(self, entries, answers):
        super().__init__(entries)
        self.answers = list(answers)  # per inputs_now call: True answers, False defers
        self.now_calls: list[tuple[str, list[int]]] = []

    def inputs_now(self, mode, ids):
        self.now_calls.append((mode, ids))
        if self.answers.pop(0):
            return "done", list(self.entries)
        return None


def test_input_answered_at_once_by_a_channel_that_can(tmp_path):
    entries = [InputEntry(0, 0, (Replica(0, "raw://a"),))]
    channel = NowChannel(entries, [True])
    body = "hello\nsend INPUT '\"\"'\nrecv\nsend DONE '\"\"'\nsleep 30\n"
    result, channel, home = run(tmp_path, body, channel)
    assert isinstance(result, TaskDone), result
    assert channel.now_calls == [("all", [])]
    assert channel.input_requests == []  # get_inputs was not needed
    assert read_replies(home)[1:] == [line("INPUT", '["done",[[0,"ok",0,[[0,"raw://a"]]]]]')]


def test_input_behind_a_deferred_reply_waits_its_turn(tmp_path):
    # The first INPUT cannot be answered now (deferred to get_inputs); the second, sent
    # in the same write, must not be answered before it: it too goes to get_inputs, in
    # turn, and the replies keep request order (8.3).
    entries = [InputEntry(0, 0, (Replica(0, "raw://a"),))]
    channel = NowChannel(entries, [False, True])
    channel.release.clear()

    async def main():
        spec = make_spec(tmp_path)
        home = install_worker(spec, body)
        task = asyncio.create_task(run_worker(spec, channel, home, limits=FAST))
        while not channel.input_requests:
            await asyncio.sleep(0.01)
        channel.release.set()
        return await task, home

    body = (
        "hello\nsend INPUT '\"\"'; send INPUT '[\"include\",[0]]'; send PING ''\n"
        "recv\nrecv\nrecv\nsend DONE '\"\"'\nsleep 30\n"
    )
    result, home = asyncio.run(main())
    assert isinstance(result, TaskDone), result
    assert channel.now_calls == [("all", [])]
    assert channel.input_requests == [("all", []), ("include", [0])]
    reply = line("INPUT", '["done",[[0,"ok",0,[[0,"raw://a"]]]]]')
    assert read_replies(home)[1:] == [reply, reply, 'OK 6 "pong"']


def test_a_failing_channel_stops_the_attempt_with_its_error(tmp_path):
    # A channel that raises while a reply is being made: run_worker raises it (after
    # the kill), whatever the worker is doing meanwhile.
    class Boom(Exception):
        pass

    class FailingChannel(Channel):
        async def get_inputs(self, mode, ids):
            await asyncio.sleep(0.05)
            raise Boom("the master is gone")

    body = "hello\necho $$ > worker.pid\nsend INPUT '\"\"'\nsleep 30\n"
    spec = make_spec(tmp_path)
    home = install_worker(spec, body)
    with pytest.raises(Boom):
        asyncio.run(run_worker(spec, FailingChannel(), home, limits=FAST))
    with open(os.path.join(home, "worker.pid")) as f:
        pid = int(f.read())
    wait_until(lambda: not pid_alive(pid), 2, "the worker to die")


def test_a_send_is_run_in_place_until_it_would_wait():
    """The zygote worker's replies: ``drain`` runs in place (no task) when the send fits;
    one that waits is carried on by a task, which sees its result, error or cancel."""
    from disco.node.runner import _run_until_wait

    steps: list[str] = []

    async def fits() -> None:
        steps.append("sent")

    assert _run_until_wait(fits()) is None
    assert steps == ["sent"]

    async def fails() -> None:
        raise BrokenPipeError("the worker is gone")

    with pytest.raises(BrokenPipeError):
        _run_until_wait(fails())

    async def main() -> None:
        loop = asyncio.get_running_loop()
        gate = loop.create_future()

        async def waits(then: str) -> None:
            steps.append("started " + then)
            value = await gate
            steps.append("%s after %s" % (then, value))
            if then == "raise":
                raise ConnectionResetError("reset")

        rest = _run_until_wait(waits("finish"))
        assert rest is not None and steps[-1] == "started finish"  # ran in place

        async def carry_on() -> None:
            await rest

        task = asyncio.create_task(carry_on())
        await asyncio.sleep(0)
        assert not task.done()
        gate.set_result("the wait")
        await task
        assert steps[-1] == "finish after the wait"

        gate = loop.create_future()
        rest = _run_until_wait(waits("raise"))
        task = asyncio.create_task(carry_on())
        gate.set_result("the wait")
        with pytest.raises(ConnectionResetError):
            await task

        gate = loop.create_future()
        rest = _run_until_wait(waits("cancel"))
        task = asyncio.create_task(carry_on())
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert gate.cancelled()  # the wait was cancelled, as in a task
        assert steps[-1] == "started cancel"

    asyncio.run(main())


# -- a worker that pipelines its requests (8.3: replies in request order) -------------------
def test_requests_written_at_once_get_their_replies_in_order(tmp_path):
    """WORKER, TASK, INPUT, MSG, OUTPUT and MSG in one write (what our worker may do):
    every message is acted on, in order, and the replies come in request order; then
    DONE ends the task as usual."""
    entries = [InputEntry(0, 0, (Replica(0, "raw://a"),))]
    body = r"""
all="$(send WORKER "{\"version\":\"1.1\",\"pid\":$$}"; send TASK '""'; send INPUT '""'
send MSG '"Done: 1 entries mapped"'; send OUTPUT '[0,"3f/map:0-node1-0-5f-1/out-0",5]'
send MSG '"Results sent to master"')"
printf '%s\n' "$all"
recv; recv; recv; recv; recv; recv
send DONE '""'
sleep 30
"""
    result, channel, home = run(tmp_path, body, Channel(entries))
    assert isinstance(result, TaskDone), result
    replies = read_replies(home)
    assert [r.split(" ", 1)[0] for r in replies] == ["OK", "TASK", "INPUT", "OK", "OK", "OK"]
    assert replies[2] == line("INPUT", '["done",[[0,"ok",0,[[0,"raw://a"]]]]]')
    assert channel.events[:2] == [
        "MSG: [map:3] Done: 1 entries mapped",
        "MSG: [map:3] Results sent to master",
    ]
    assert channel.events[2].startswith("DONE: [map:3]")
    assert [o.kind for o in result.outputs] == ["dir"]


def test_outputs_and_done_written_at_once_end_the_task(tmp_path):
    """OUTPUT, MSG and DONE in one write: the output is counted, the MSG logged before
    DONE's event."""
    body = r"""
hello
send TASK '""'; recv
all="$(send OUTPUT '[0,"3f/map:0-node1-0-5f-1/out-0",5]'; send MSG '"sent"'; send DONE '""')"
printf '%s\n' "$all"
sleep 30
"""
    result, channel, home = run(tmp_path, body)
    assert isinstance(result, TaskDone), result
    assert [(o.kind, o.size) for o in result.outputs] == [("dir", 5)]
    assert channel.events[0] == "MSG: [map:3] sent"
    assert channel.events[1].startswith("DONE: [map:3]")


def test_a_bad_worker_version_with_task_already_sent_is_fatal_and_unanswered(tmp_path):
    """WORKER with a wrong version and TASK in the same write: the job fails for the
    version (8.3), and the TASK sent after it gets no reply."""
    body = r"""
all="$(send WORKER '{"version":"1.0","pid":1}'; send TASK '""')"
printf '%s\n' "$all"
recv
sleep 30
"""
    result, _, home = run(tmp_path, body)
    assert result == TaskFailed("fatal", "Invalid worker version: 1.0")
    assert read_replies(home) == []
