"""The ``disco`` command (library.md 18): control the master and inspect jobs.

``disco [global options] <command> [command options] [args]``; global options (``-s``,
``-v``, ``-t``, ``-M``) may appear anywhere.  Every command is a function
``cmd_<name>(prog, args)`` over parsed arguments, so tests call :func:`main` directly.
Errors exit with status 1 and the message on stderr (``-v`` shows the traceback).
Job-name arguments accept ``@`` (the newest job) and ``@?text`` (the newest job whose
name contains ``text``).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import os
import sys
import zipfile
from collections.abc import Callable, Iterator
from functools import cached_property
from typing import Any

from disco.error import DiscoError
from disco.settings import DiscoSettings

logger = logging.getLogger(__name__)

__all__ = ["Program", "build_parser", "command_adder", "main", "run_main"]

GLOBAL_VALUE_OPTIONS = ("-s", "--settings", "-t", "--token", "-M", "--master")


class Program:
    """What every command gets: the settings, a ``Disco`` client, input helpers."""

    def __init__(self, settings: DiscoSettings, verbose: bool = False) -> None:
        self.settings = settings
        self.verbose = verbose

    @cached_property
    def disco(self) -> Any:
        from disco.core import Disco

        return Disco(settings=self.settings)

    def check_master(self, command: str, disco: Any = None) -> None:
        """Raise ``DiscoError`` at once unless the master answers (one try, no back-off)."""
        from disco import comm

        disco = disco or self.disco
        url = "%s/disco/version" % disco.master
        try:
            status = comm.raw_request("GET", url, tries=1, timeout=10).status
            error = "" if status == 200 else "HTTP status %d" % status
        except DiscoError as e:
            error = str(e)
        if error:
            raise DiscoError(
                "disco %s needs a running master, and none answers at %s: %s "
                "(start one with 'disco start', or name one with -M)"
                % (command, disco.master, error)
            )

    def jobname(self, name: str) -> str:
        """Resolve the ``@`` / ``@?text`` job history shorthands (library.md 18.1)."""
        if name == "@" or name.startswith("@?"):
            text = name[2:]
            for _start, _status, jobname in self.disco.joblist():
                if text in jobname:
                    return jobname
        return name

    def jobnames(self, names: list[str]) -> list[str]:
        return [self.jobname(name) for name in names]

    def job_results(self, names: list[Any]) -> list[Any]:
        """The current result URLs of the named jobs (``-j/--job-mode``)."""
        urls: list[Any] = []
        for name in names:
            urls.extend(self.disco.results(self.jobname(name), timeout=0)[1])
        return urls

    def inputs(self, args: list[str]) -> list[Any]:
        """``args``, else one input per line of stdin (tab-separated replicas)."""
        if args:
            return list(args)
        if sys.stdin is None or sys.stdin.isatty():
            return []
        found: list[Any] = []
        for line in sys.stdin.read().splitlines():
            replicas = line.split()
            if len(replicas) == 1:
                found.append(replicas[0])
            elif replicas:
                found.append(replicas)
        return found


def out(*parts: Any) -> None:
    print(*parts, flush=True)


def print_results(results: Any) -> None:
    """One result per line, replicas tab-separated."""
    for result in results:
        out("\t".join(result) if isinstance(result, (list, tuple)) else result)


# -- daemon --------------------------------------------------------------------------------
def _master(prog: Program) -> Any:
    from disco.cli.daemon import Master

    return Master(prog.settings)


def cmd_start(prog: Program, args: argparse.Namespace) -> int:
    """Start the master daemon."""
    if getattr(args, "dask", None):  # --dask ADDRESS: nodes from a Dask cluster
        prog.settings["DISCO_DASK_SCHEDULER"] = args.dask
    out(_master(prog).start())
    return 0


def cmd_stop(prog: Program, args: argparse.Namespace) -> int:
    """Stop the master daemon."""
    out(_master(prog).stop())
    return 0


def cmd_restart(prog: Program, args: argparse.Namespace) -> int:
    """Stop, then start the master daemon."""
    master = _master(prog)
    out(master.stop())
    out(master.start())
    return 0


def cmd_status(prog: Program, args: argparse.Namespace) -> int:
    """Print whether the master daemon is running."""
    out(_master(prog).status())
    return 0


def cmd_nodaemon(prog: Program, args: argparse.Namespace) -> int:
    """Run the master in the foreground."""
    return _master(prog).nodaemon()


# -- cluster ---------------------------------------------------------------------------------
def cmd_config(prog: Program, args: argparse.Namespace) -> int:
    """Print the cluster config: host<TAB>cores per line."""
    for host, cores in prog.disco.config:
        out("%s\t%s" % (host, cores))
    return 0


def cmd_nodeinfo(prog: Program, args: argparse.Namespace) -> int:
    """Print host<TAB><info> per node."""
    for host, info in sorted(prog.disco.nodeinfo().items()):
        out("%s\t%s" % (host, info))
    return 0


def cmd_client_version(prog: Program, args: argparse.Namespace) -> int:
    """Print the version of this client."""
    from disco.core import client_version

    out(client_version())
    return 0


def cmd_master_version(prog: Program, args: argparse.Namespace) -> int:
    """Print the version of the master."""
    out(prog.disco.master_version())
    return 0


def cmd_debug(prog: Program, args: argparse.Namespace) -> int:
    """Print the master's state: settings, config, nodes, blacklists, running tasks, jobs."""
    import json

    from disco.cli import debug
    from disco.core import Disco

    disco = prog.disco
    if args.host:  # 0.5: the master on that host
        host = args.host if ":" in args.host else "%s:%s" % (args.host, prog.settings["DISCO_PORT"])
        disco = Disco(host, settings=prog.settings)
    prog.check_master("debug", disco)
    state = debug.collect(disco, max_jobs=args.jobs)
    out(json.dumps(state, indent=2, sort_keys=True) if args.json else debug.render(state))
    return 0


def cmd_test(prog: Program, args: argparse.Namespace) -> int:
    """Run Disco test modules (test_*.py) against the master; exit 1 if any test fails."""
    from disco.cli import testcmd

    prog.check_master("test")
    passed = testcmd.run(prog.settings, args.testname, args.directory, sys.stderr)
    return 0 if passed else 1


# -- jobs: submitting ------------------------------------------------------------------------
def cmd_job(prog: Program, args: argparse.Namespace) -> int:
    """Submit a classic (v1) job pack around any worker executable; print the job name."""
    from disco.job import JobPack

    worker = args.worker
    scheduler = {key: eval(value, {}, {}) for key, value in args.scheduler}  # noqa: S307 (18.2)
    jobdict = {
        "input": prog.inputs(args.input),
        "worker": _arcname(worker),
        "map?": args.has_map,
        "reduce?": args.has_reduce,
        "nr_reduces": args.nr_reduces,
        "prefix": args.prefix or os.path.splitext(os.path.basename(worker))[0],
        "scheduler": scheduler,
        "owner": args.owner or prog.settings["DISCO_JOB_OWNER"],
        "save_results": False,
        "save_info": "ddfs",
    }
    jobenvs = dict(args.env)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as jobzip:
        for path in [worker, *args.file]:
            _zip_path(jobzip, path)
        members = jobzip.namelist()
    jobdata = _jobdata(args.data)
    # library.md 21.7: the original forgot the version argument; classic packs are v1.
    jobpack = JobPack(1, jobdict, jobenvs, buf.getvalue(), jobdata)
    if prog.verbose:
        out("jobdict:\n%s" % "\n".join("\t%s\t%s" % kv for kv in jobdict.items()))
        out("jobenvs:\n%s" % "\n".join("\t%s\t%s" % kv for kv in jobenvs.items()))
        out("jobhome:\n%s" % "\n".join("\t%s" % m for m in members))
        out("jobdata:\n\t%r" % jobdata)
    if args.dump_jobpack:
        sys.stdout.flush()
        sys.stdout.buffer.write(jobpack.dumps())
        sys.stdout.buffer.flush()
    else:
        out(prog.disco.submit(jobpack.dumps()))
    return 0


def _arcname(path: str) -> str:
    name = os.path.normpath(path).lstrip("/")
    return os.path.basename(name) if name.startswith("..") else name


def _zip_path(jobzip: zipfile.ZipFile, path: str) -> None:
    if os.path.isdir(path):
        for root, _dirs, files in os.walk(path):
            for name in sorted(files):
                full = os.path.join(root, name)
                jobzip.write(full, _arcname(full))
    else:
        jobzip.write(path, _arcname(path))


def _jobdata(data: str | None) -> bytes:
    if not data:
        return b""
    if data.startswith("@"):
        with open(data[1:], "rb") as f:
            return f.read()
    return data.encode("utf-8")


def cmd_submit(prog: Program, args: argparse.Namespace) -> int:
    """Submit a ready job pack from a file (or stdin); print the job name."""
    if args.file and args.file != "-":
        with open(args.file, "rb") as f:
            data = f.read()
    else:
        data = sys.stdin.buffer.read()
    out(prog.disco.submit(data))
    return 0


def cmd_run(prog: Program, args: argparse.Namespace) -> int:
    """Instantiate a Job class (dotted name) and run it; print the job name."""
    from disco.util import reify

    if "" not in sys.path:
        sys.path.insert(0, "")
    jobclass = _job_class(args.jobclass)
    job = jobclass(name=args.name, master=prog.disco, settings=prog.settings)
    jobargs: dict[str, Any] = {}
    for key in ("map", "reduce", "save", "profile", "partitions"):
        value = getattr(args, key)
        if value is not None:
            jobargs[key] = reify(value)
    if args.scheduler:
        jobargs["scheduler"] = {key: eval(value, {}, {}) for key, value in args.scheduler}  # noqa: S307
    for key, value in args.param:
        jobargs[key] = value
    inputs = prog.inputs(args.input)
    if inputs:
        jobargs["input"] = inputs
    job.run(**jobargs)
    out(job.name)
    return 0


def _job_class(dotted: str) -> Any:
    """The class ``disco run`` names, with a hint when its module cannot be imported."""
    from disco.util import reify

    try:
        return reify(dotted)
    except ModuleNotFoundError as e:
        raise DiscoError(
            "%s: the job class %s must be importable as a module from the current "
            "directory (%s) or from PYTHONPATH; e.g. run 'disco run grep.Grep ...' from "
            "examples/, or set PYTHONPATH=<the folder holding the module>"
            % (e, dotted, os.getcwd())
        ) from None
    except AttributeError as e:
        raise DiscoError("%s: no job class %s" % (e, dotted)) from None


# -- jobs: inspecting ------------------------------------------------------------------------
def cmd_wait(prog: Program, args: argparse.Namespace) -> int:
    """Wait for the job to finish, then print its results."""
    jobname = prog.jobname(args.jobname)
    if sys.stdout.isatty() and not prog.settings["DISCO_EVENTS"]:
        from disco.cli.progress import wait_with_progress

        results = wait_with_progress(prog.disco, jobname, sys.stdout)
    else:
        results = prog.disco.wait(jobname)
    print_results(results)
    return 0


def cmd_results(prog: Program, args: argparse.Namespace) -> int:
    """Print the job's current results (no waiting)."""
    _status, results = prog.disco.results(prog.jobname(args.jobname), timeout=0)
    print_results(results)
    return 0


def cmd_stageresults(prog: Program, args: argparse.Namespace) -> int:
    """Print the results of one stage of the job."""
    print_results(prog.disco.stageresults(prog.jobname(args.jobname), args.stage))
    return 0


def cmd_jobs(prog: Program, args: argparse.Namespace) -> int:
    """Print job names, newest first (with -S: name<TAB>status)."""
    for _start, status, name in prog.disco.joblist():
        out("%s\t%s" % (name, status) if args.status else name)
    return 0


def cmd_jobdict(prog: Program, args: argparse.Namespace) -> int:
    """Print the job name, then <TAB>key<TAB>value per jobdict entry."""
    jobname = prog.jobname(args.jobname)
    out(jobname)
    for key, value in prog.disco.jobpack(jobname).jobdict.items():
        out("\t%s\t%s" % (key, value))
    return 0


def cmd_events(prog: Program, args: argparse.Namespace) -> int:
    """Print the job's raw event lines from a byte offset."""
    sys.stdout.write(prog.disco.rawevents(prog.jobname(args.jobname), offset=args.offset))
    sys.stdout.flush()
    return 0


def cmd_deref(prog: Program, args: argparse.Namespace) -> int:
    """Expand inputs (index files, tags) and print one input per line, replicas tab-separated."""
    from disco.util import deref

    urls = prog.inputs(args.url)
    if args.job_mode:
        urls = prog.job_results(urls)
    for replicas in deref(urls, resolve=args.resolve):
        out("\t".join(replicas))
    return 0


def cmd_kill(prog: Program, args: argparse.Namespace) -> int:
    """Kill the jobs."""
    for name in prog.jobnames(args.jobname):
        prog.disco.kill(name)
    return 0


def cmd_purge(prog: Program, args: argparse.Namespace) -> int:
    """Purge the jobs (delete their metadata and data)."""
    for name in prog.jobnames(args.jobname):
        prog.disco.purge(name)
    return 0


def cmd_oob(prog: Program, args: argparse.Namespace) -> int:
    """Print the job's OOB keys, or with "oob get KEY JOB" one value (needs DDFS)."""
    if args.jobname and args.jobname[0] == "get":
        if len(args.jobname) != 3:
            raise DiscoError("usage: disco oob get key jobname")
        value = prog.disco.oob_get(prog.jobname(args.jobname[2]), args.jobname[1])
        sys.stdout.flush()
        sys.stdout.buffer.write(value or b"")
        sys.stdout.buffer.flush()
        return 0
    if len(args.jobname) != 1:
        raise DiscoError("usage: disco oob jobname")
    for key in prog.disco.oob_list(prog.jobname(args.jobname[0])):
        out(key)
    return 0


def cmd_pstats(prog: Program, args: argparse.Namespace) -> int:
    """Print profiling statistics of a job run with profile=True (needs DDFS)."""
    stats = prog.disco.profile_stats(prog.jobname(args.jobname), stream=sys.stdout)
    stats.sort_stats(*(args.sort_stats or ["cumulative"])).print_stats()
    return 0


# -- parsing -------------------------------------------------------------------------------
class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # exit 1 with the message, not argparse's 2
        raise _UsageError("%s\n%s" % (self.format_usage().strip(), message))


class _UsageError(Exception):
    pass


def _global_options(parser: argparse.ArgumentParser, suppress: bool) -> None:
    def default(value: Any) -> Any:
        return argparse.SUPPRESS if suppress else value

    group = parser.add_argument_group("global options")
    group.add_argument(
        "-s", "--settings", metavar="FILE", default=default(None), help="use this settings file"
    )
    group.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        default=default(False),
        help="print the settings; tracebacks on errors",
    )
    group.add_argument("-t", "--token", default=default(None), help="DDFS read and write token")
    group.add_argument("-M", "--master", default=default(None), help="the master (DISCO_MASTER)")


def command_adder(
    parser: argparse.ArgumentParser,
) -> Callable[..., argparse.ArgumentParser]:
    """``command(name, func, aliases=())``: add a subcommand run by ``func(prog, args)``,
    documented by ``func``'s docstring, accepting the global options too."""
    sub = parser.add_subparsers(dest="command", metavar="<command>", parser_class=_Parser)

    def command(
        name: str, func: Callable[..., int], aliases: tuple[str, ...] = ()
    ) -> argparse.ArgumentParser:
        doc = (func.__doc__ or "").strip()
        p = sub.add_parser(name, help=doc, description=doc, aliases=list(aliases))
        _global_options(p, suppress=True)
        p.set_defaults(func=func)
        return p

    return command


JOBNAME_HELP = "a job name; @ is the last job, @?text the last job whose name contains text"


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="disco",
        description="Control Disco and inspect its jobs.",
        epilog="Wherever a job name is expected, @ means the last job submitted and "
        "@?text the last job whose name contains text (e.g. disco wait @).",
    )
    _global_options(parser, suppress=False)
    command = command_adder(parser)

    for name in ("start", "stop", "restart", "status", "nodaemon", "config", "nodeinfo",
                 "client_version", "master_version"):  # fmt: skip
        p = command(name, globals()["cmd_" + name])
        if name == "start":
            p.add_argument(
                "--dask",
                metavar="ADDRESS",
                help="run the tasks on the Dask cluster of this scheduler (DISCO_DASK_SCHEDULER)",
            )

    p = command("debug", cmd_debug)
    p.add_argument("host", nargs="?", help="the master's host (default: DISCO_MASTER)")
    p.add_argument("-n", "--jobs", type=int, default=20, help="jobs to list besides active ones")
    p.add_argument("--json", action="store_true", help="print the state as JSON")

    p = command("test", cmd_test)
    p.add_argument("testname", nargs="*", help="test_module or test_module.TestCase[.test]")
    p.add_argument(
        "-d", "--directory", help="where the test modules are (default: $DISCO_HOME/tests or .)"
    )

    p = command("deref", cmd_deref)
    p.add_argument("url", nargs="*")
    p.add_argument("-r", "--resolve", action="store_true", help="resolve internal URLs")
    p.add_argument("-j", "--job-mode", action="store_true", help="arguments are job names")

    p = command("events", cmd_events)
    p.add_argument("jobname", help=JOBNAME_HELP)
    p.add_argument("-o", "--offset", type=int, default=0)

    p = command("job", cmd_job)
    p.set_defaults(trailing="input")
    p.add_argument("worker")
    p.add_argument("input", nargs="*")
    p.add_argument("-m", "--has-map", action="store_true")
    p.add_argument("-r", "--has-reduce", action="store_true")
    p.add_argument("-n", "--nr-reduces", type=int, default=1)
    p.add_argument("-o", "--owner")
    p.add_argument("-p", "--prefix")
    p.add_argument(
        "-S", "--scheduler", nargs=2, action="append", default=[], metavar=("KEY", "VALUE")
    )
    p.add_argument("-e", "--env", nargs=2, action="append", default=[], metavar=("KEY", "VALUE"))
    p.add_argument("-f", "--file", action="append", default=[], metavar="PATH")
    p.add_argument("-d", "--data", help="jobdata (@file reads a file)")
    p.add_argument("-D", "--dump-jobpack", action="store_true")

    p = command("submit", cmd_submit)
    p.add_argument("file", nargs="?")

    p = command("run", cmd_run)
    p.set_defaults(trailing="input")  # inputs may also follow the options
    p.add_argument(
        "jobclass", help="module.Class of a Job subclass, importable from here or PYTHONPATH"
    )
    p.add_argument("input", nargs="*", help="input URLs (default: one per line of stdin)")
    p.add_argument("-n", "--name", help="job name prefix")
    p.add_argument(
        "-m", "--map", metavar="EXPR", help="the map function (module.name, or an expression)"
    )
    p.add_argument(
        "-r", "--reduce", metavar="EXPR", help="the reduce function (module.name or expression)"
    )
    p.add_argument(
        "--save", metavar="EXPR", help="True: keep the results in DDFS (save_results)"
    )
    p.add_argument("--profile", metavar="EXPR", help="True: profile every task (disco pstats @)")
    p.add_argument(
        "--partitions",
        metavar="EXPR",
        help="number of reduce partitions; None: map results are not partitioned",
    )
    p.add_argument(
        "-S",
        "--scheduler",
        nargs=2,
        action="append",
        default=[],
        metavar=("KEY", "VALUE"),
        help="scheduler option, e.g. -S max_cores 4",
    )
    p.add_argument(
        "-P",
        "--param",
        nargs=2,
        action="append",
        default=[],
        metavar=("KEY", "VALUE"),
        help="job argument KEY (a string), e.g. -P params Liberty",
    )

    for name in ("wait", "results", "jobdict"):
        command(name, globals()["cmd_" + name]).add_argument("jobname", help=JOBNAME_HELP)

    p = command("stageresults", cmd_stageresults)
    p.add_argument("jobname", help=JOBNAME_HELP)
    p.add_argument("-S", "--stage", default="map")

    p = command("jobs", cmd_jobs)
    p.add_argument("-S", "--status", action="store_true")

    for name in ("kill", "purge"):
        command(name, globals()["cmd_" + name]).add_argument(
            "jobname", nargs="+", help=JOBNAME_HELP
        )

    p = command("oob", cmd_oob)
    p.add_argument("jobname", nargs="+", help="jobname, or: get KEY JOBNAME (@: the last job)")

    p = command("pstats", cmd_pstats)
    p.add_argument("jobname", help=JOBNAME_HELP)
    p.add_argument("-k", "--sort-stats", action="append", metavar="KEY")
    return parser


def _command_index(argv: list[str]) -> int | None:
    """Index of the command word: the first argument that is not a global option."""
    skip = False
    for i, arg in enumerate(argv):
        if skip:
            skip = False
        elif arg in GLOBAL_VALUE_OPTIONS:
            skip = True
        elif not arg.startswith("-") or arg == "-":
            return i
    return None


@contextlib.contextmanager
def _exported(values: dict[str, str]) -> Iterator[None]:
    """Put the settings given on the command line in the environment, for this run."""
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _explicit_settings(opts: argparse.Namespace) -> dict[str, str]:
    values: dict[str, str] = {}
    if opts.settings:
        if not os.path.isfile(opts.settings):
            raise DiscoError("Settings file %s does not exist" % opts.settings)
        values["DISCO_SETTINGS_FILE"] = os.path.abspath(opts.settings)
    if opts.token:
        values["DDFS_READ_TOKEN"] = values["DDFS_WRITE_TOKEN"] = opts.token
    if opts.master:
        master = opts.master
        if ":" not in master:
            port = DiscoSettings(environ={**os.environ, **values})["DISCO_PORT"]
            master = "%s:%s" % (master, port)
        values["DISCO_MASTER"] = master
    return values


def main(argv: list[str] | None = None) -> int:
    """Run ``disco`` with ``argv`` (default ``sys.argv[1:]``); returns the exit status."""
    return run_main(build_parser(), argv, Program)


def run_main(
    parser: argparse.ArgumentParser,
    argv: list[str] | None,
    make_program: Callable[..., Program],
) -> int:
    """Parse ``argv`` with ``parser`` and run the chosen command on
    ``make_program(settings, verbose=...)``; the exit status (errors: 1, message on
    stderr; ``-v``: traceback).  Shared by the ``disco`` and ``ddfs`` commands."""
    argv = list(sys.argv[1:] if argv is None else argv)
    verbose = "-v" in argv or "--verbose" in argv
    if not logging.getLogger().handlers:  # the CLI is an entry point: it owns logging
        logging.basicConfig(
            format="%(message)s", level=logging.INFO if verbose else logging.WARNING
        )
    try:
        index = _command_index(argv)
        if index is not None and argv[index] not in _commands(parser):
            raise _UsageError("unrecognized command: %s" % " ".join(argv[index:]))
        args = _parse(parser, argv)
        with _exported(_explicit_settings(args)):
            settings = DiscoSettings()
            if args.verbose:
                for key in settings.keys():
                    try:
                        out("%s = %s" % (key, settings[key]))
                    except Exception as e:  # a broken default must not hide the rest
                        out("%s = <error: %s>" % (key, e))
            if args.command is None:
                out("Disco master at %s" % settings["DISCO_MASTER"])
                return 0
            return int(args.func(make_program(settings, verbose=args.verbose), args) or 0)
    except SystemExit as e:  # -h
        return e.code if isinstance(e.code, int) else 0
    except KeyboardInterrupt:
        return 1
    except BrokenPipeError:  # the reader went away (disco events @ | head): not an error
        _silence_stdout()
        return 0
    except _UsageError as e:
        print(e, file=sys.stderr)
        return 1
    except Exception as e:
        if verbose:
            raise
        print(e, file=sys.stderr)
        return 1


def _parse(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    """``parse_args``, except that a command with a ``trailing`` list argument (``run``,
    ``job``) also takes the words left after its options: ``run C -P k v URL...``."""
    args, extras = parser.parse_known_args(argv)
    trailing = getattr(args, "trailing", None)
    if extras and trailing and not any(e.startswith("-") and e != "-" for e in extras):
        getattr(args, trailing).extend(extras)
    elif extras:
        parser.error("unrecognized arguments: %s" % " ".join(extras))
    return args


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's last flush cannot fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # no real stdout (tests capture it)
        pass


def _commands(parser: argparse.ArgumentParser) -> set[str]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return set(action.choices)
    return set()


if __name__ == "__main__":
    sys.exit(main())
