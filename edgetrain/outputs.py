"""Every file and folder a command writes goes through here, so a bad path is one line.

``output_file(path)`` creates the folders above ``path`` and checks that ``path`` can be
written, so that a command refuses a bad ``--json`` or ``--metrics`` before its long work;
``output_dir(path)`` does the same for a folder (a build folder, ``generate -o``).
``write_text`` and ``write_json`` write a file; ``writing(path)`` wraps another library's
writer (matplotlib's ``savefig``, Amaranth's build plan). An ``OSError`` on the way becomes
an ``OutputError`` naming the path and the operating system's reason, which the CLI prints
on one line with exit code 2.
"""

import contextlib
import json
import tempfile
from pathlib import Path

from .errors import OutputError

__all__ = ["output_file", "output_dir", "write_text", "write_json", "writing"]


@contextlib.contextmanager
def _reason(path, doing="write"):
    try:
        yield
    except OSError as e:
        where = f" ({e.filename})" if e.filename and str(e.filename) != str(path) else ""
        raise OutputError(f"cannot {doing} {path}: {e.strerror or e}{where}") from None


def output_dir(path):
    """Create the folder ``path`` (and its parents) and check that it takes files; return
    it as a ``Path``."""
    path = Path(path)
    with _reason(path, "write into folder"):
        path.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=path).close()
    return path


def output_file(path):
    """Create the folders above ``path`` and check that ``path`` can be written, leaving an
    existing file as it is; return it as a ``Path``. ``None`` (no file asked for) gives
    ``None``."""
    if path is None:
        return None
    path = Path(path)
    with _reason(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        existed = path.exists()
        with open(path, "a"):
            pass
        if not existed:
            path.unlink()
    return path


def write_text(path, text):
    """Write ``text`` to ``path`` (creating its folders); return the path."""
    path = output_file(path)
    with _reason(path):
        path.write_text(text)
    return path


def write_json(path, data):
    """Write ``data`` as indented JSON to ``path`` (creating its folders); return the path."""
    return write_text(path, json.dumps(data, indent=2) + "\n")


@contextlib.contextmanager
def writing(path):
    """Check ``path`` as ``output_file`` does, then yield it; an ``OSError`` raised by the
    writer inside the block becomes an ``OutputError`` naming ``path``."""
    path = output_file(path)
    with _reason(path):
        yield path
