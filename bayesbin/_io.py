"""Atomic file writes: a temporary file in the target folder, then ``os.replace``, umask kept.

A write either replaces the target completely or leaves it untouched. The new file gets the
mode a plain ``open(path, "w")`` would give it (``0o666`` minus the umask), or, when it replaces
an existing file, that file's mode: re-saving over a private file keeps it private. Temporary
files carry the writer's process id; one left behind by a writer that was killed is removed by
the next write to the same target.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

__all__ = ["atomic_path", "atomic_write", "file_mode"]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def file_mode(path) -> int:
    """Return the mode a write to ``path`` should leave: the existing file's, else 0o666 - umask."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        return 0o666 & ~_umask()


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def _clean_stale(path: Path) -> None:
    """Remove temporary files of earlier writes to ``path`` whose writer process is gone."""
    prefix = f".{path.name}."
    for tmp in path.parent.glob(f".{path.name}.*"):
        rest = tmp.name[len(prefix) :]
        pid_text = rest.split(".", 1)[0]
        if not pid_text.isdigit() or not tmp.name.endswith(".tmp"):
            continue
        if not _pid_alive(int(pid_text)):
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()


@contextlib.contextmanager
def atomic_path(path, suffix: str = ".tmp") -> Iterator[str]:
    """Yield a temporary path beside ``path``; on success it replaces ``path``, else it is removed.

    For writers that take a file name (``to_netcdf``, ``to_csv``). Nothing half-written survives
    (an exception, Ctrl-C included, removes the temporary file); the final file keeps the user's
    umask, or the mode of the file it replaces.

    Parameters
    ----------
    path : str or os.PathLike
        The target.
    suffix : str
        Ends the temporary file's name (it must end in ``.tmp``).

    Yields
    ------
    str
        The temporary path to write.
    """
    if not suffix.endswith(".tmp"):
        raise ValueError(f"suffix must end in '.tmp'; got {suffix!r}")
    path = Path(os.fspath(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    _clean_stale(path)
    mode = file_mode(path)
    fd, tmp = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.name}.{os.getpid()}.", suffix=suffix
    )
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write(path, write: Callable[[BinaryIO], object]) -> None:
    """Write ``path`` atomically through ``write(binary_file_handle)``, fsynced before the rename.

    Parameters
    ----------
    path : str or os.PathLike
    write : callable
        Called with the open binary file.
    """
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        write(fh)
        fh.flush()
        os.fsync(fh.fileno())
