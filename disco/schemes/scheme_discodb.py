"""``discodb://``: not supported (library.md 13).

0.5 read and wrote DiscoDB files through the C ``discodb`` extension; we do not depend
on it (its Python 3 build on PyPI, ``pydiscodb``, is a binary extension that also
installs a top-level ``tests`` package, which clashes with ours).  Every entry point raises ``SchemeUnavailable`` (a
``DiscoError``) naming the scheme, so a job that uses it fails with a clear message.
"""

from __future__ import annotations

from typing import Any, NoReturn

from disco.schemes._optional import SchemeUnavailable

MESSAGE = (
    "The discodb:// scheme (DiscoDB input and output: Open, input_stream, DiscoDBOutput, "
    "discodb_output, discodb_stream) is not supported by this Disco (it needs the discodb C "
    "extension, which disco-mapreduce does not use). Write the records in Disco's own format "
    "(the default output) or to redis:// instead."
)


def _unsupported(*args: Any, **kwargs: Any) -> NoReturn:
    raise SchemeUnavailable(MESSAGE)


Open = open = input_stream = DiscoDBOutput = discodb_output = _unsupported  # noqa: A001
discodb_stream = (_unsupported, _unsupported)
