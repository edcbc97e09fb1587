"""Progress (stderr) and result tables (stdout) of the commands, drawn by rich.

``Progress`` is a live bar when stderr is a terminal; in a log it writes at most one line
every ``interval`` seconds, plus the final line. ``print_table`` prints a rich ``Table``:
without colour codes when its stream is not a terminal, and never wrapped to a log's
assumed width.
"""

import sys
import threading
import time

from rich import box
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
from rich.progress import Progress as _LiveBar
from rich.table import Table
from rich.text import Text

__all__ = ["Progress", "print_table", "LOG_INTERVAL"]

#: Seconds between two progress lines in a log (stderr not a terminal).
LOG_INTERVAL = 5.0

# A rule of dashes under the header, columns two spaces apart, nothing else drawn.
_RULE = box.Box("    \n    \n -  \n    \n    \n    \n    \n    \n", ascii=True)


class Progress:
    """Count ``total`` steps of ``label``: ``with Progress(total, "label") as p: p.update()``.

    ``update(n, postfix)`` adds ``n`` finished steps (``n = 0`` only shows a new
    ``postfix``, e.g. a stage's elapsed time); it may be called from another thread.
    ``total`` may be raised before an update, once the work turns out longer.
    ``console`` (default: stderr) decides between the live bar and log lines, which come
    ``interval`` seconds apart (default ``LOG_INTERVAL``) by ``clock`` (a fake one in tests).
    """

    def __init__(self, total, label="", *, console=None, interval=None, clock=time.monotonic):
        self.total, self.label, self.done, self.postfix = max(int(total), 1), label, 0, ""
        self.console = console or Console(stderr=True, highlight=False)
        self.interval, self._clock = interval or LOG_INTERVAL, clock
        self._lock = threading.Lock()
        self._bar = self._task = self._start = self._logged = self._last_line = None

    def __enter__(self):
        self._start = self._logged = self._clock()
        if self.console.is_terminal:
            # Rows printed to stdout meanwhile go above the bar when both share the terminal.
            self._bar = _LiveBar(TextColumn("{task.description}"), BarColumn(),
                                 MofNCompleteColumn(), TimeElapsedColumn(),
                                 TextColumn("{task.fields[postfix]}"), console=self.console,
                                 redirect_stdout=sys.stdout.isatty(), redirect_stderr=False)
            self._bar.start()
            self._task = self._bar.add_task(self.label, total=self.total, postfix="")
        return self

    def __exit__(self, *exc):
        with self._lock:
            if self._bar is not None:
                self._bar.stop()
            elif self._last_line != self._state():
                self._log()

    @property
    def elapsed(self):
        """Seconds since the bar started."""
        return self._clock() - self._start

    def update(self, n=1, postfix=None):
        """Add ``n`` finished steps; show ``postfix`` (if given) after the count."""
        with self._lock:
            self.done = min(self.done + n, self.total)
            if postfix is not None:
                self.postfix = postfix
            if self._bar is not None:
                self._bar.update(self._task, total=self.total, completed=self.done,
                                 postfix=self.postfix)
            elif self._clock() - self._logged >= self.interval:
                self._log()

    def _state(self):
        return self.done, self.postfix

    def _log(self):
        self._logged, self._last_line = self._clock(), self._state()
        line = (f"{self.label}: {self.done}/{self.total} "
                f"({100 * self.done / self.total:.0f}%) {self.elapsed:.1f}s"
                f"{'  ' + self.postfix if self.postfix else ''}")
        self.console.print(Text(line), soft_wrap=True)


def print_table(rows, headers, *, stream=None, title=None):
    """Print ``rows`` (sequences of cells) under ``headers``, after a ``title`` line.

    Floats show 4 significant digits; a column whose cells are all numbers (or empty) is
    right-aligned. ``stream`` defaults to stdout.
    """
    console = Console(file=stream, highlight=False)
    if not console.is_terminal:
        console.width = 10_000          # a log has no width: never wrap a row
    cells = [[_fmt(c) for c in row] for row in rows]
    table = Table(box=_RULE, show_edge=False, pad_edge=False, padding=(0, 1, 0, 0),
                  header_style="bold")
    for i, header in enumerate(headers):
        numeric = cells and all(_numeric(r[i]) or not r[i] for r in cells)
        table.add_column(Text(str(header)), justify="right" if numeric else "left")
    for row in cells:
        table.add_row(*(Text(c) for c in row))
    with console.capture() as captured:
        if title:
            console.print(Text(title), soft_wrap=True)
        console.print(table)
    console.file.write("".join(line.rstrip() + "\n"
                               for line in captured.get().splitlines()))
    console.file.flush()


def _fmt(c):
    if isinstance(c, float):
        return f"{c:.4g}" if abs(c) < 1e5 else f"{c:.3e}"
    return str(c)


def _numeric(s):
    try:
        float(s.rstrip("%x"))
        return True
    except ValueError:
        return False
