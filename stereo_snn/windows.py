"""One pass over the windows of a recording: skip those before the first event, read the
others, record what was skipped and why.

Every command that walks a recording window by window (infer, evaluate, energy, visualize)
goes through :func:`read_windows`. A window ends at an entry's time ``t_us`` and spans the
``window_us`` microseconds before it. A window before the recording's first event is an
expected, quiet skip (reason :data:`BEFORE_FIRST_EVENT`); a window whose read fails with one
of the given errors is skipped with the error as its reason and one line through ``log``.
An :class:`~stereo_snn.errors.OutputError` (an output that cannot be written) and a
:class:`~stereo_snn.errors.CorruptFileError` (a file that contradicts itself, so that every
window may be wrong) always stop the pass.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any, Callable, Generic, Iterable, Iterator, Mapping, Protocol, Sequence, TypeVar

from .errors import CorruptFileError, OutputError, StereoSNNError

__all__ = [
    "BEFORE_FIRST_EVENT",
    "NO_GROUND_TRUTH",
    "QUIET_REASONS",
    "Window",
    "before_first_event",
    "read_windows",
    "skip_record",
    "skip_summary",
]

#: skip reason of a window that lies (wholly, or for evaluation partly) before the first event
BEFORE_FIRST_EVENT = "window before the first event"
#: skip reason of an evaluation window whose ground-truth map has no valid pixel
NO_GROUND_TRUTH = "no valid ground-truth pixel"
#: expected skips: recorded and counted, never printed one by one
QUIET_REASONS = (BEFORE_FIRST_EVENT, NO_GROUND_TRUTH)

T = TypeVar("T")


class _Entry(Protocol):
    index: int
    t_us: int


E = TypeVar("E", bound=_Entry)


def before_first_event(t_us: int, window_us: int, start_us: int, whole_window: bool = False) -> bool:
    """Whether the window ``[t_us - window_us, t_us)`` (microseconds) lies before the first
    event ``start_us`` of the recording: entirely (``t_us <= start_us``, nothing to read), or,
    with ``whole_window=True``, even partly (``t_us - window_us < start_us``: a window cut
    short by the start of the recording, which evaluation leaves out as an unfair test).

    >>> before_first_event(1_000_000, 50_000, 1_000_000), before_first_event(1_040_000, 50_000, 1_000_000, True)
    (True, True)
    """
    return t_us - window_us < start_us if whole_window else t_us <= start_us


def skip_record(entry: _Entry, reason: str, sequence: str | None = None) -> dict[str, Any]:
    """``{"sequence", "index", "t_us", "reason"}`` of a skipped window (no ``sequence`` key without one)."""
    head = {"sequence": sequence} if sequence is not None else {}
    return {**head, "index": int(entry.index), "t_us": int(entry.t_us), "reason": reason}


def skip_summary(skipped: Sequence[Mapping[str, Any]]) -> str:
    """``"skipped N"`` with the count per expected reason and of failures, e.g.
    ``"skipped 3 (1 window before the first event, 2 failed, listed above)"``.

    >>> skip_summary([{"reason": BEFORE_FIRST_EVENT}, {"reason": "x.h5: corrupt"}])
    'skipped 2 (1 window before the first event, 1 failed, listed above)'
    """
    if not skipped:
        return "skipped 0"
    counts = Counter(s["reason"] for s in skipped)
    quiet = [(counts[r], r) for r in QUIET_REASONS if counts[r]]
    failed = len(skipped) - sum(c for c, _ in quiet)
    if not failed and len(quiet) == 1:
        return f"skipped {len(skipped)} ({quiet[0][1]})"
    parts = [f"{c} {r}" for c, r in quiet] + ([f"{failed} failed, listed above"] if failed else [])
    return f"skipped {len(skipped)} ({', '.join(parts)})"


@dataclass(frozen=True)
class Window(Generic[E, T]):
    """One window that was read: its entry and what ``read`` returned for it."""

    entry: E
    value: T


def read_windows(
    entries: Iterable[E],
    read: Callable[[E], T],
    skipped: list[dict[str, Any]],
    *,
    start_us: int | None = None,
    window_us: int = 0,
    whole_window: bool = False,
    errors: tuple[type[BaseException], ...] = (StereoSNNError,),
    sequence: str | None = None,
    log: Callable[[str], None] | None = None,
) -> Iterator[Window[E, T]]:
    """Yield a :class:`Window` for each entry that ``read`` reads; append a
    :func:`skip_record` to ``skipped`` for each one it skips.

    With ``start_us`` (the recording's first event, microseconds), windows before it (see
    :func:`before_first_event`, ``whole_window``) are skipped quietly without calling
    ``read``. A ``read`` that raises one of ``errors`` skips its window with the error as the
    reason and, with ``log``, one line ``"skipped <sequence> entry <index>: <reason>"``.
    ``sequence`` names the recording in the records and lines.

    >>> from types import SimpleNamespace as Entry
    >>> skipped = []
    >>> entries = [Entry(index=i, t_us=t) for i, t in enumerate((0, 100, 200))]
    >>> def read(e):
    ...     if e.t_us == 100:
    ...         raise ValueError("no events")
    ...     return e.t_us * 2
    >>> [w.value for w in read_windows(entries, read, skipped, start_us=0, errors=(ValueError,), sequence="seq",
    ...                                log=print)]
    skipped seq entry 1: no events
    [400]
    >>> skip_summary(skipped)
    'skipped 2 (1 window before the first event, 1 failed, listed above)'
    """
    for entry in entries:
        if start_us is not None and before_first_event(entry.t_us, window_us, start_us, whole_window=whole_window):
            skipped.append(skip_record(entry, BEFORE_FIRST_EVENT, sequence))
            continue
        try:
            value = read(entry)
        except (OutputError, CorruptFileError):
            raise
        except errors as exc:
            skipped.append(skip_record(entry, str(exc), sequence))
            if log is not None:
                log(f"skipped {sequence} entry {entry.index}: {exc}")
            continue
        yield Window(entry, value)
