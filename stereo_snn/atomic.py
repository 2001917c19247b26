"""Atomic file writing: write to a temporary file beside the target, then rename.

A crash or a full disk never leaves a half-written output or checkpoint under the
final name. No torch import here (the events layer uses it too).
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import IO, Any, Iterable, Iterator

from .errors import OutputError

__all__ = [
    "atomic_path",
    "atomic_open",
    "write_text",
    "write_json",
    "ensure_dir",
    "check_output_path",
    "check_readable",
]


def ensure_dir(path: str | os.PathLike) -> Path:
    """Create ``path`` (and parents) if needed; raise :class:`OutputError` if impossible."""
    p = Path(path)
    try:
        p.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{p}: cannot create output folder ({exc.strerror or exc})") from exc
    if not os.access(p, os.W_OK):
        raise OutputError(f"{p}: output folder is not writable")
    return p


def check_output_path(
    path: str | os.PathLike,
    inputs: Iterable[str | os.PathLike | None] = (),
    what: str = "output",
    folder: bool = False,
) -> Path:
    """Refuse an output path that would destroy or misplace something the user has.

    Raises :class:`OutputError` naming ``what`` (e.g. ``--zip``) when an output file
    (``folder=False``) is an existing folder, an output folder (``folder=True``) is an existing
    file, or the path is one of ``inputs`` or an existing file inside an input folder (an input
    would be replaced). ``None`` entries of ``inputs`` are ignored.
    """
    target = Path(path)
    if not folder and target.is_dir():
        raise OutputError(f"{what} {target}: is an existing folder; give a file name")
    if folder and target.exists() and not target.is_dir():
        raise OutputError(f"{what} {target}: is an existing file, not a folder")
    resolved = target.resolve()
    for item in inputs:
        if item is None:
            continue
        src = Path(item).resolve()
        if resolved == src:
            raise OutputError(f"{what} {target}: is one of the inputs; writing there would replace it")
        if target.exists() and src.is_dir() and src in resolved.parents:
            raise OutputError(
                f"{what} {target}: is an existing file inside the input folder {item}; writing there would replace it"
            )
    return target


def check_readable(path: str | os.PathLike, error: type[Exception], what: str = "file") -> Path:
    """Raise ``error`` saying "permission denied" when ``path`` exists but cannot be read
    (a folder: listed), so that permission problems are never reported as corrupt files."""
    p = Path(path)
    mode = os.R_OK | (os.X_OK if p.is_dir() else 0)
    if p.exists() and not os.access(p, mode):
        raise error(f"{p}: permission denied (cannot read this {what}; check its permissions)")
    return p


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; rename it onto ``path`` on success.

    ``suffix`` defaults to the target's suffix, so libraries that choose a format by
    extension (OpenCV, matplotlib) still work. On an exception the temporary file is
    removed and the target is left untouched.
    """
    target = Path(path)
    if target.is_dir():
        raise OutputError(f"{target}: is an existing folder; cannot write a file there")
    ensure_dir(target.parent if str(target.parent) else Path("."))
    suffix = target.suffix if suffix is None else suffix
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=f".tmp{suffix}", dir=target.parent)
    except OSError as exc:
        raise OutputError(f"{target}: cannot write ({exc.strerror or exc})") from exc
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        # mkstemp creates 0600 files; give the output the mode a plain open() would have
        with contextlib.suppress(OSError):
            os.chmod(tmp_path, 0o666 & ~_umask())
        os.replace(tmp_path, target)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp_path.unlink()
        raise


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", **kwargs: Any) -> Iterator[IO]:
    """Open a temporary file for writing and rename it onto ``path`` when closed cleanly."""
    if not any(m in mode for m in "wx"):
        raise ValueError("atomic_open is for writing ('w' or 'wb')")
    with atomic_path(path) as tmp:
        with open(tmp, mode.replace("x", "w"), **kwargs) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Atomically write ``text`` (UTF-8) to ``path``."""
    with atomic_open(path, "w", encoding="utf-8") as fh:
        fh.write(text)
    return Path(path)


def write_json(path: str | os.PathLike, obj: Any, indent: int = 2) -> Path:
    """Atomically write ``obj`` as JSON (sorted keys off, trailing newline)."""
    return write_text(path, json.dumps(obj, indent=indent, default=_json_default) + "\n")


def _json_default(obj: Any) -> Any:
    # numpy scalars/arrays and paths, without importing numpy at module import
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
