"""Write files and directories so that readers never see half of one.

Everything is written next to its destination under a temporary name and then renamed with
``os.replace`` (atomic on POSIX and Windows for files on one filesystem). On any exception,
KeyboardInterrupt included, the temporary is removed and the destination is untouched.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


@contextlib.contextmanager
def atomic_path(destination: str | os.PathLike, *, keep_suffix: bool = False) -> Iterator[Path]:
    """Yield a temporary file path; on success it replaces ``destination``.

    ``keep_suffix``: the temporary ends in the destination's suffix (for writers that pick the format from it
    or append their own, such as OpenCV's video writer and ezc3d).
    """
    destination = Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    suffix = destination.suffix if keep_suffix else ".partial"
    fd, tmp = tempfile.mkstemp(prefix=f".{destination.name}.", suffix=suffix, dir=destination.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600; give the file normal permissions
    try:
        yield tmp_path
        os.replace(tmp_path, destination)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def write_bytes(destination: str | os.PathLike, data: bytes) -> Path:
    with atomic_path(destination) as tmp:
        tmp.write_bytes(data)
    return Path(destination)


def write_text(destination: str | os.PathLike, text: str) -> Path:
    return write_bytes(destination, text.encode("utf-8"))


@contextlib.contextmanager
def atomic_dir(destination: str | os.PathLike, *, replace: bool = False) -> Iterator[Path]:
    """Yield a temporary directory; on success it becomes ``destination``.

    With ``replace=True`` an existing destination is swapped out only after the new one is complete
    (moved aside, new one renamed in, old one deleted), so a failure never loses what was there.
    """
    destination = Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{destination.name}.", suffix=".partial", dir=destination.parent))
    os.chmod(tmp, 0o777 & ~_umask())
    try:
        yield tmp
        if destination.exists():
            if not replace:
                raise FileExistsError(destination)
            old = destination.with_name(f".{destination.name}.old-{os.getpid()}")
            os.replace(destination, old)
            os.replace(tmp, destination)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, destination)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
