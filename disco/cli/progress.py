"""Live progress of ``disco wait`` on a terminal: one bar per pipeline stage.

Rows come from ``jobinfo()['pipeline']`` (master-api.md 3.1): ``[stage, pending,
waiting, running, done, failed]``, where ``waiting`` already counts the pending tasks,
so a stage has ``waiting + running + done`` tasks in all.
"""

from __future__ import annotations

from typing import IO, Any

from disco.error import CommError

BAR_WIDTH = 30


def render(pipeline: list[list[Any]], width: int = BAR_WIDTH) -> list[str]:
    """One text line per stage: ``map          [#####-----]  3/6 done, 1 running``."""
    lines = []
    namewidth = max([len(str(row[0])) for row in pipeline] + [5])
    for stage, _pending, waiting, running, done, failed in (list(row[:6]) for row in pipeline):
        total = max(0, waiting) + running + done
        filled = width * done // total if total else 0
        bar = "#" * filled + "-" * (width - filled)
        line = "%-*s [%s] %d/%d done" % (namewidth, stage, bar, done, total)
        if running:
            line += ", %d running" % running
        if failed:
            line += ", %d failed" % failed
        lines.append(line)
    return lines


class ProgressBar:
    """Redraws the stage bars in place on a terminal (ANSI cursor movement)."""

    def __init__(self, out: IO[str]) -> None:
        self.out = out
        self.drawn = 0

    def draw(self, lines: list[str]) -> None:
        if self.drawn:
            self.out.write("\033[%dA" % self.drawn)
        for line in lines:
            self.out.write("\r%s\033[K\n" % line)
        for _ in range(self.drawn - len(lines)):
            self.out.write("\r\033[K\n")
        self.drawn = max(self.drawn, len(lines))
        self.out.flush()


def wait_with_progress(disco: Any, jobname: str, out: IO[str], poll_interval: float = 1.0) -> Any:
    """Show stage bars until the job is no longer active; then ``disco.wait`` it.

    The final ``wait`` returns at once with the results, or raises the ``JobError`` that
    ``Disco.wait`` gives for a dead or unknown job.
    """
    bar = ProgressBar(out)
    while True:
        try:
            status, _ = disco.results(jobname, timeout=int(poll_interval * 1000))
        except CommError:
            status = "active"
        try:
            bar.draw(render(disco.jobinfo(jobname).get("pipeline") or []))
        except CommError:
            pass  # unknown job, or the master is busy: wait() below tells
        if status != "active":
            break
    return disco.wait(jobname, poll_interval=poll_interval, show=False)
