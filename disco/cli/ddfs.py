"""The ``ddfs`` command.  DDFS is not part of this release yet (see ``disco.ddfs``)."""

from __future__ import annotations

import sys

MESSAGE = "DDFS is not available yet: the ddfs command needs the DDFS server (not implemented in this release)"


def main(argv: list[str] | None = None) -> int:
    """Print that DDFS is not available and return exit status 1."""
    print(MESSAGE, file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
