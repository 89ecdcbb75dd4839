"""The ``ddfs`` command (ddfs.md 4): tags, blobs and attributes from the shell.

``ddfs [global options] <command> [command options] [args]``, with the global options of
``disco`` (``-s``, ``-v``, ``-t``, ``-M``).  Every command is a function
``cmd_<name>(prog, args)``; parsing, settings and error handling are shared with the
``disco`` command (``disco.cli.disco.run_main``).  Commands that take tags read them from
stdin (one per line) when none are given.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator
from functools import cached_property
from typing import Any

from disco.cli.disco import Program, _global_options, _Parser, command_adder, out, run_main
from disco.error import CommError, DiscoError

__all__ = ["DDFSProgram", "build_parser", "main"]

COPY_SIZE = 1024 * 1024  # bytes per read of ``ddfs cat``


class DDFSProgram(Program):
    """``Program`` plus a ``DDFS`` client and the argument expansions of ddfs.md 4."""

    @cached_property
    def ddfs(self) -> Any:
        from disco.ddfs import DDFS

        return DDFS(settings=self.settings)

    def tags(self, args: argparse.Namespace, names: list[str]) -> list[str]:
        """The tag arguments (stdin lines when none); with ``-p`` each is a prefix."""
        tags = names or _stdin_words()
        if getattr(args, "prefix_mode", False):
            return [tag for prefix in tags for tag in self.ddfs.list(prefix)]
        return tags

    def blobs(self, args: argparse.Namespace, tags: list[str]) -> Iterator[list[str]]:
        for tag in tags:
            yield from self.ddfs.blobs(tag, ignore_missing=args.ignore_missing)

    def sources(self, args: argparse.Namespace, names: list[str]) -> Iterator[Any]:
        """URL arguments as they are, then the blobs of tag arguments (``cat``/``xcat``);
        with ``-j`` the arguments are job names standing for their results."""
        from disco.ddfs import istag

        names = self.tags(args, names)
        if getattr(args, "job_mode", False):
            names = self.job_results(names)
        tags = [name for name in names if isinstance(name, str) and istag(name)]
        yield from (name for name in names if name not in tags)
        yield from self.blobs(args, tags)


def _stdin_words() -> list[str]:
    if sys.stdin is None or sys.stdin.isatty():
        return []
    return sys.stdin.read().split()


def _replica_lists(args: list[str]) -> list[list[str]]:
    """Each argument (or stdin line) is one whitespace-separated replica list."""
    lines = args
    if not lines and sys.stdin is not None and not sys.stdin.isatty():
        lines = sys.stdin.read().splitlines()
    return [line.split() for line in lines if line.split()]


def _tabbed(replicas: Any) -> str:
    return "\t".join(replicas) if isinstance(replicas, (list, tuple)) else str(replicas)


# -- reading -------------------------------------------------------------------------------
def cmd_attrs(prog: DDFSProgram, args: argparse.Namespace) -> int:
    """Print the tag's user attributes: KEY<TAB>VALUE per line."""
    for key, value in prog.ddfs.attrs(args.tag).items():
        out("%s\t%s" % (key, value))
    return 0


def cmd_blobs(prog: DDFSProgram, args: argparse.Namespace) -> int:
    """Print every blob reachable from the tags: its replica URLs, tab-separated."""
    for replicas in prog.blobs(args, prog.tags(args, args.tag)):
        out(_tabbed(replicas))
    return 0


def cmd_cat(prog: DDFSProgram, args: argparse.Namespace) -> int:
    """Write the raw bytes of the URLs, then of every blob reachable from the tags."""
    from disco import auth
    from disco.comm import open_url
    from disco.util import inputlist

    failed = 0
    for source in inputlist(prog.sources(args, args.url)):  # dir:// -> its data files
        for url in source if isinstance(source, (list, tuple)) else [source]:
            try:
                cluster = url.startswith(("disco://", "dir://"))  # node data: our token
                headers = auth.headers(prog.settings) if cluster else None
                f = open_url(prog.ddfs.node_url(url), headers=headers)
            except (CommError, DiscoError, OSError) as e:
                print("Failed to read %s: %s" % (url, e), file=sys.stderr)
                continue
            with f:  # streamed: a blob need not fit in memory
                sys.stdout.flush()
                while data := f.read(COPY_SIZE):
                    sys.stdout.buffer.write(data)
                sys.stdout.buffer.flush()
            break
        else:
            failed += 1
    if failed and not args.ignore_missing:
        raise DiscoError("Could not read %d input(s): every replica failed" % failed)
    return 0


def cmd_exists(prog: DDFSProgram, args: argparse.Namespace) -> int:
    """Print True (exit 0) if the tag exists, else False on stderr (exit 1)."""
    if prog.ddfs.exists(args.tag):
        out("True")
        return 0
    print("False", file=sys.stderr)
    return 1


def cmd_find(prog: DDFSProgram, args: argparse.Namespace) -> int:
    """Walk the tags and print every tag path (tab-separated tag URLs)."""
    ignore = args.ignore_missing or args.warn_missing
    for tag in prog.tags(args, args.tag):
        for tagpath, children, blobs in prog.ddfs.walk(tag, ignore_missing=ignore):
            if children == () and blobs == ():  # walk's marker of a missing tag
                if args.warn_missing:
                    print("Tag not found: %s" % "\t".join(tagpath), file=sys.stderr)
            else:
                out("\t".join(tagpath))
    return 0


def cmd_get(prog: DDFSProgram, args: argparse.Namespace) -> int:
    """Print the tag document (a Python dict)."""
    out(prog.ddfs.get(args.tag))
    return 0


def cmd_getattr(prog: DDFSProgram, args: argparse.Namespace) -> int:
    """Print the value of one attribute of the tag."""
    out(prog.ddfs.getattr(args.tag, args.attr))
    return 0


def cmd_ls(prog: DDFSProgram, args: argparse.Namespace) -> int:
    """Print the names of the tags starting with the prefixes (all tags without one)."""
    for prefix in args.prefix or [""]:
        for tag in prog.ddfs.list(prefix):
            out(tag)
            if args.recursive:
                for replicas in prog.ddfs.blobs(tag, ignore_missing=args.ignore_missing):
                    out("\t%s" % _tabbed(replicas))
                out("")
    return 0


def cmd_stat(prog: DDFSProgram, args: argparse.Namespace) -> int:
    """Print each tag's fields except urls, tab-separated."""
    for tag in prog.tags(args, args.tag):
        doc = prog.ddfs.get(tag)
        out("\t".join(str(value) for key, value in doc.items() if key != "urls"))
    return 0


def cmd_urls(prog: DDFSProgram, args: argparse.Namespace) -> int:
    """Print each entry of the tags: its replica URLs, tab-separated."""
    for tag in prog.tags(args, args.tag):
        for replicas in prog.ddfs.urls(tag):
            out(_tabbed(replicas))
    return 0


def cmd_xcat(prog: DDFSProgram, args: argparse.Namespace) -> int:
    """Decode the records of the URLs and tags and print each record's fields tab-separated."""
    from disco.core import result_iterator
    from disco.util import reify
    from disco.worker.task_io import chain_reader

    reader = reify(args.reader) if args.reader else chain_reader
    stream = reify(args.stream)
    inputs = list(prog.sources(args, args.url))
    for record in result_iterator(inputs, reader=reader, input_stream=stream):
        if isinstance(record, (list, tuple)):
            out("\t".join(_text(field) for field in record))
        else:  # a line
            out(_text(record).rstrip("\n"))
    return 0


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


# -- writing -------------------------------------------------------------------------------
def cmd_chtok(prog: DDFSProgram, args: argparse.Namespace) -> int:
    """Change the tag's read token (-r) and/or write token (-w)."""
    if args.read:
        prog.ddfs.setattr(args.tag, "ddfs:read-token", args.token_value)
    if args.write:
        prog.ddfs.setattr(args.tag, "ddfs:write-token", args.token_value)
    return 0


def cmd_chunk(prog: DDFSProgram, args: argparse.Namespace) -> int:
    """Chunk the inputs into blobs of Disco's record format and tag them."""
    from disco.ddfs import istag
    from disco.fileutils import MB
    from disco.util import reify

    names = args.url or _stdin_words()
    inputs: list[Any] = []
    for name in names:
        if name == "-":
            inputs.append("-")
        elif isinstance(name, str) and istag(name):
            inputs.extend(prog.blobs(args, prog.tags(args, [name])))
        else:
            inputs.append(name)
    kwargs: dict[str, Any] = {"input_stream": reify(args.stream)}
    if args.reader:
        kwargs["reader"] = reify(args.reader)
    with _stdin_saved(inputs) as sources:
        _tag_urls, blobs = prog.ddfs.chunk(
            args.tag,
            sources,
            replicas=args.replicas,
            forceon=args.forceon,
            update=args.update,
            chunk_size=int(args.size * MB),
            max_record_size=int(args.max_record_size * MB),
            **kwargs,
        )
    for replicas in blobs:
        out("created: %s" % _tabbed(replicas))
    return 0


@contextlib.contextmanager
def _stdin_saved(inputs: list[Any]) -> Iterator[list[Any]]:
    """``inputs`` with ``-`` replaced by a temporary file ``stdin`` holding standard
    input (``chunk`` reads inputs by URL, and names blobs after them: ``stdin-0``)."""
    if "-" not in inputs:
        yield inputs
        return
    with tempfile.TemporaryDirectory(prefix="ddfs-chunk-") as tmp:
        path = os.path.join(tmp, "stdin")
        with open(path, "wb") as f:
            f.write(sys.stdin.buffer.read())
        yield [path if name == "-" else name for name in inputs]


def cmd_cp(prog: DDFSProgram, args: argparse.Namespace) -> int:
    """Copy the urls of one tag to another (replacing the target's)."""
    prog.ddfs.put(args.target, prog.ddfs.get(args.source)["urls"])
    return 0


def cmd_delattr(prog: DDFSProgram, args: argparse.Namespace) -> int:
    """Delete an attribute of the tag."""
    prog.ddfs.delattr(args.tag, args.attr)
    return 0


def cmd_push(prog: DDFSProgram, args: argparse.Namespace) -> int:
    """Push files (or directories with -r, tarball members with -x) as blobs into the tag."""
    files: list[Any] = []
    for path in args.file:
        if args.tarballs:
            for name, fileobj, _size in prog.ddfs.tarblobs(
                path, compress=args.compress, include=args.include, exclude=args.exclude
            ):
                out("extracted %s" % name)
                files.append((fileobj, name))
        elif os.path.isdir(path):
            if not args.recursive:
                print("%s is a directory (not pushing)." % path, file=sys.stderr)
                continue
            files.extend(_tree(path))
        elif os.path.isfile(path):
            files.append(path)
        else:
            raise DiscoError("No such file: %s" % path)
    out("pushing...")
    prog.ddfs.push(args.tag, files, replicas=args.replicas, forceon=args.forceon)
    return 0


def _tree(root: str) -> list[str]:
    found = []
    for dirpath, dirs, names in os.walk(root):
        dirs.sort()
        found.extend(os.path.join(dirpath, name) for name in sorted(names))
    return found


def cmd_put(prog: DDFSProgram, args: argparse.Namespace) -> int:
    """Replace the tag's urls with the given replica lists (args or stdin lines)."""
    prog.ddfs.put(args.tag, _replica_lists(args.url))
    return 0


def cmd_rm(prog: DDFSProgram, args: argparse.Namespace) -> int:
    """Delete the tags."""
    for tag in prog.tags(args, args.tag):
        out(prog.ddfs.delete(tag))
    return 0


def cmd_setattr(prog: DDFSProgram, args: argparse.Namespace) -> int:
    """Set an attribute of the tag to a string."""
    prog.ddfs.setattr(args.tag, args.attr, args.value)
    return 0


def cmd_tag(prog: DDFSProgram, args: argparse.Namespace) -> int:
    """Append the given replica lists (args or stdin lines) to the tag."""
    prog.ddfs.tag(args.tag, _replica_lists(args.url))
    return 0


def cmd_touch(prog: DDFSProgram, args: argparse.Namespace) -> int:
    """Create the tags if missing (existing tags are left as they are)."""
    for tag in prog.tags(args, args.tag):
        prog.ddfs.tag(tag, [])
    return 0


# -- parsing -------------------------------------------------------------------------------
def _ignore(p: argparse.ArgumentParser) -> None:
    p.add_argument("-i", "--ignore-missing", action="store_true", help="ignore missing tags")


def _prefix(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "-p", "--prefix-mode", action="store_true", help="arguments are prefixes of tag names"
    )


def _job(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "-j", "--job-mode", action="store_true", help="arguments are job names (their results)"
    )


def _reads(p: argparse.ArgumentParser) -> None:
    p.add_argument("-R", "--reader", metavar="DOTTED.NAME", help="record reader")
    p.add_argument(
        "-T",
        "--stream",
        metavar="DOTTED.NAME",
        default="disco.worker.task_io.default_stream",
        help="input streams",
    )


def _placement(p: argparse.ArgumentParser) -> None:
    p.add_argument("-n", "--replicas", type=int, help="copies of each blob")
    p.add_argument(
        "-F", "--forceon", action="append", default=[], metavar="HOST", help="put a copy on HOST"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="ddfs", description="Use DDFS, the Disco Distributed Filesystem.")
    _global_options(parser, suppress=False)
    command = command_adder(parser)

    for name in ("attrs", "exists", "get"):
        command(name, globals()["cmd_" + name]).add_argument("tag")
    for name in ("getattr", "delattr"):
        p = command(name, globals()["cmd_" + name])
        p.add_argument("tag")
        p.add_argument("attr")

    p = command("setattr", cmd_setattr)
    for arg in ("tag", "attr", "value"):
        p.add_argument(arg)

    p = command("blobs", cmd_blobs)
    p.add_argument("tag", nargs="*")
    _ignore(p)
    _prefix(p)

    p = command("cat", cmd_cat)
    p.add_argument("url", nargs="*")
    _job(p)
    _ignore(p)
    _prefix(p)

    p = command("xcat", cmd_xcat)
    p.add_argument("url", nargs="*")
    _job(p)
    _reads(p)
    _ignore(p)
    _prefix(p)

    p = command("chtok", cmd_chtok)
    p.add_argument("tag")
    p.add_argument("token_value", metavar="token")
    p.add_argument("-r", "--read", action="store_true", help="set the read token")
    p.add_argument("-w", "--write", action="store_true", help="set the write token")

    p = command("chunk", cmd_chunk)
    p.add_argument("tag")
    p.add_argument("url", nargs="*")
    _reads(p)
    _ignore(p)
    _prefix(p)
    _placement(p)
    p.add_argument("-u", "--update", action="store_true", help="skip blob names already there")
    p.add_argument("-S", "--size", type=float, default=64.0, help="chunk size, MB")
    p.add_argument("-Z", "--max-record-size", type=float, default=1.0, help="largest record, MB")

    p = command("cp", cmd_cp)
    p.add_argument("source")
    p.add_argument("target")

    p = command("find", cmd_find)
    p.add_argument("tag", nargs="*")
    _ignore(p)
    _prefix(p)
    p.add_argument(
        "-w", "--warn-missing", action="store_true", help="report missing tags (implies -i)"
    )

    p = command("ls", cmd_ls)
    p.add_argument("prefix", nargs="*")
    _ignore(p)
    _prefix(p)
    p.add_argument("-r", "--recursive", action="store_true", help="also print the blobs")

    p = command("push", cmd_push)
    p.add_argument("tag")
    p.add_argument("file", nargs="*")
    _placement(p)
    p.add_argument("-r", "--recursive", action="store_true", help="push directories' files")
    p.add_argument("-x", "--tarballs", action="store_true", help="push the members of tarballs")
    p.add_argument("-z", "--compress", action="store_true", help="gzip tarball members")
    p.add_argument("-I", "--include", metavar="TEXT", help="only members whose name has TEXT")
    p.add_argument("-E", "--exclude", metavar="TEXT", help="skip members whose name has TEXT")

    for name in ("put", "tag"):
        p = command(name, globals()["cmd_" + name])
        p.add_argument("tag")
        p.add_argument("url", nargs="*", help="a replica list (URLs separated by spaces)")

    for name, aliases in (("rm", ()), ("stat", ("stats",)), ("urls", ())):
        p = command(name, globals()["cmd_" + name], aliases=aliases)
        p.add_argument("tag", nargs="*")
        _prefix(p)

    command("touch", cmd_touch).add_argument("tag", nargs="*")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run ``ddfs`` with ``argv`` (default ``sys.argv[1:]``); returns the exit status."""
    return run_main(build_parser(), argv, DDFSProgram)


if __name__ == "__main__":
    sys.exit(main())
