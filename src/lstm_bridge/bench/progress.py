"""Progress of a benchmark run: a rich bar on a terminal, plain lines on stderr, or nothing."""

from __future__ import annotations

import sys

from .environment import importable


class ProgressReporter:
    """A rich progress bar on a terminal, else plain lines on stderr (or nothing)."""

    def __init__(self, total: int, style: str):
        self.total, self.done = total, 0
        self._bar = None
        self.style = style
        if style == "auto":
            self.style = "rich" if sys.stderr.isatty() and importable("rich") else "plain"
        if self.style == "rich":
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self._bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=Console(stderr=True),
            )
            self._bar.start()
            self._task = self._bar.add_task("benchmark", total=total)

    def start(self, what: str) -> None:
        if self._bar is not None:
            self._bar.update(self._task, description=what)
        elif self.style == "plain":
            print(f"[{self.done + 1}/{self.total}] {what} ...", file=sys.stderr, flush=True)

    def finish(self, summary: str) -> None:
        self.done += 1
        if self._bar is not None:
            self._bar.advance(self._task)
            self._bar.console.print(summary)
        elif self.style == "plain":
            print(f"    {summary}", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
