"""Progress bars for the long steps (rich, as PyMC draws its own); a no-op when turned off."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator

__all__ = ["progress", "Task", "RICH_JUPYTER_WARNING"]

# rich asks for ipywidgets to draw a live bar in Jupyter, as a UserWarning in every notebook cell
# that shows progress; bayesbin does not need widgets, so the request is noise there
RICH_JUPYTER_WARNING = '.*install "ipywidgets" for Jupyter support.*'


class Task:
    """One bar: ``advance`` it, or change what it says it is doing."""

    def __init__(self, bar=None, task_id=None):
        self._bar = bar
        self._id = task_id

    def advance(self, n: float = 1.0) -> None:
        """Move the bar ``n`` steps on."""
        if self._bar is not None:
            self._bar.advance(self._id, n)

    def describe(self, text: str, total: float | None = None) -> None:
        """Say what the step is doing now (and, optionally, a new total)."""
        if self._bar is not None:
            kw = {"description": text}
            if total is not None:
                kw["total"] = total
            self._bar.update(self._id, **kw)


@contextlib.contextmanager
def progress(description: str, total: float | None, enabled: bool) -> Iterator[Task]:
    """Show a bar while the block runs (nothing at all when ``enabled`` is false).

    Parameters
    ----------
    description : str
        What the step is doing.
    total : float or None
        Number of steps (None: an indeterminate bar).
    enabled : bool

    Yields
    ------
    Task
    """
    if not enabled:
        yield Task()
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=RICH_JUPYTER_WARNING, category=UserWarning)
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
        ) as bar:
            yield Task(bar, bar.add_task(description, total=total))
