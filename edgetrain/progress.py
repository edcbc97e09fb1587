"""Progress bars and result tables for long-running commands (stderr / stdout)."""

import json
import sys
import time
from pathlib import Path

__all__ = ["Progress", "print_table", "write_json"]


class Progress:
    """A one-line progress bar on stderr: ``with Progress(total, "label") as p: p.update()``.

    On a terminal the bar redraws in place; otherwise it prints at most every ~10%, so CI
    logs stay short.
    """

    def __init__(self, total, label="", *, stream=None):
        self.total, self.label, self.done = max(int(total), 1), label, 0
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.start = time.monotonic()
        self._last_decile, self._last_drawn = -1, -1
        self.postfix = ""

    def __enter__(self):
        self._draw()
        return self

    def __exit__(self, *exc):
        self._draw(final=True)

    def update(self, n=1, postfix=None):
        self.done = min(self.done + n, self.total)
        if postfix is not None:
            self.postfix = postfix
        self._draw()

    def _draw(self, final=False):
        frac = self.done / self.total
        decile = int(frac * 10)
        if not self.tty and (decile == self._last_decile if not final
                             else self.done == self._last_drawn):
            return
        self._last_decile, self._last_drawn = decile, self.done
        elapsed = time.monotonic() - self.start
        bar = "#" * int(frac * 30) + "-" * (30 - int(frac * 30))
        line = (f"{self.label} [{bar}] {self.done}/{self.total} {elapsed:6.1f}s"
                f"{'  ' + self.postfix if self.postfix else ''}")
        if self.tty:
            self.stream.write("\r" + line + ("\n" if final else ""))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()


def print_table(rows, headers, *, stream=None, title=None):
    """Print ``rows`` (sequences) under ``headers`` as an aligned text table."""
    stream = stream or sys.stdout
    cells = [[_fmt(c) for c in row] for row in rows]
    widths = [max(len(str(h)), *(len(r[i]) for r in cells)) if cells else len(str(h))
              for i, h in enumerate(headers)]
    if title:
        print(title, file=stream)
    print("  ".join(str(h).ljust(w) for h, w in zip(headers, widths)), file=stream)
    print("  ".join("-" * w for w in widths), file=stream)
    for r in cells:
        print("  ".join(c.rjust(w) if _numeric(c) else c.ljust(w) for c, w in zip(r, widths)),
              file=stream)


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


def write_json(path, data):
    """Write ``data`` as indented JSON to ``path`` (creating folders); return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")
    return path
