"""Atomic writes keep the user's umask, an existing file's mode, and clean up after killed writers."""

from __future__ import annotations

import os
import stat
import subprocess
import sys

import pytest

from bayesbin._io import atomic_path, atomic_write


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def umask():
    def set_mask(mask):
        old = os.umask(mask)
        restores.append(old)

    restores = []
    yield set_mask
    for old in restores[:1]:
        os.umask(old)


@pytest.mark.parametrize("mask", [0o022, 0o077, 0o002])
def test_a_new_file_gets_the_umask(tmp_path, umask, mask):
    umask(mask)
    target = tmp_path / "out.bin"
    atomic_write(target, lambda fh: fh.write(b"abc"))
    assert target.read_bytes() == b"abc"
    assert _mode(target) == 0o666 & ~mask


def test_replacing_a_private_file_keeps_it_private(tmp_path, umask):
    umask(0o022)
    target = tmp_path / "model.bbits"
    target.write_bytes(b"old")
    os.chmod(target, 0o600)
    atomic_write(target, lambda fh: fh.write(b"new"))
    assert target.read_bytes() == b"new" and _mode(target) == 0o600


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "r.json"
    target.write_text("complete")

    def boom(fh):
        fh.write(b"half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, boom)
    assert target.read_text() == "complete"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json"]


def test_a_killed_writers_temporary_is_removed_by_the_next_write(tmp_path):
    target = tmp_path / "results.json"
    # a writer killed mid-write: its temporary file (with its pid) stays behind
    code = (
        "import os, sys\n"
        "from bayesbin._io import atomic_path\n"
        f"with atomic_path({str(target)!r}) as tmp:\n"
        "    open(tmp, 'w').write('partial')\n"
        "    os._exit(0)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    left = [p for p in tmp_path.iterdir() if p.name.startswith(".results.json.")]
    assert len(left) == 1 and not target.exists()
    # a live writer's temporary file is not touched
    live = tmp_path / f".results.json.{os.getppid()}.abc.tmp"
    live.write_text("in progress")
    atomic_write(target, lambda fh: fh.write(b"{}"))
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == sorted([live.name, "results.json"])


def test_suffix_must_mark_a_temporary(tmp_path):
    with pytest.raises(ValueError, match="tmp"):
        with atomic_path(tmp_path / "x", suffix=".csv"):
            pass
