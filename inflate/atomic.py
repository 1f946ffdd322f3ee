"""Atomic file writes: write beside the target, fsync, then rename, so no half-written file is ever left.

The file gets the mode a plain ``open()`` would give it (``0o666`` less the umask), not ``mkstemp``'s 0600, so a
shared cache or run folder stays readable by the group as usual."""
from __future__ import annotations

import contextlib
import os
import secrets
import stat
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path, suffix: str = ".tmp"):
    """Yield a temporary path in the target's folder; on success it replaces ``path`` atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _create_beside(path, suffix)
    mode = stat.S_IMODE(os.stat(tmp).st_mode)  # 0o666 less the umask, as the kernel applied it
    try:
        yield Path(tmp)
        os.chmod(tmp, mode)  # writers that replace the file (safetensors writes 0600) get the same mode back
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _create_beside(path: Path, suffix: str) -> str:
    """Create an empty, new file next to ``path`` with mode ``0o666`` (the kernel applies the umask)."""
    for _ in range(100):
        tmp = path.parent / f".{path.name}.{secrets.token_hex(4)}{suffix}"
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666))
        except FileExistsError:
            continue
        return str(tmp)
    raise FileExistsError(f"could not create a temporary file beside {path}")
