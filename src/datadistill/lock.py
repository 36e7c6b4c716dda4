"""One writer per output: an exclusive lock held while a process writes a file or a work folder.

The lock is `fcntl.flock` on a small hidden `.NAME.lock` file beside the target that also holds the holder's PID. The kernel drops
a flock when its process dies (even by SIGKILL), so a lock can never be left stale in the sense of
blocking the next run; a lock file whose PID is gone is taken over with a log line. A second process
asking for a held lock stops at once with a message naming the holder's PID and the lock file.
"""

from __future__ import annotations

import contextlib
import errno
import os
from pathlib import Path
from typing import Iterator

from .errors import DataError
from .log import logger

log = logger.getChild("lock")


class LockedError(DataError):
    """Another process holds the lock; the message names its PID and the lock file."""


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True


@contextlib.contextmanager
def exclusive(target: str | Path, what: str = "") -> Iterator[Path]:
    """Hold the hidden `.NAME.lock` beside `target` while the block runs; `what` names the work in the message."""
    import fcntl

    target = Path(target).absolute()  # `--out .` and `--out /full/path` name one lock
    target = target.parent.resolve() / target.name if target.name not in ("", ".", "..") else target.resolve()
    lock_path = target.parent / f".{target.name.lstrip('.')}.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
        os.close(fd)  # not ours: leave the holder's PID in the file
        if e.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
            raise
        raise LockedError(
            f"{target}: another datadistill process (PID {holder}) is writing it"
            f"{f' ({what})' if what else ''}; lock file {lock_path}. Wait for it to finish or "
            f"stop it; two writers would corrupt it"
        ) from None
    try:
        old = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        if old.isdigit() and int(old) != os.getpid() and not _pid_alive(int(old)):
            log.info(f"taking over {lock_path}: its process {old} is gone")
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield lock_path
    finally:
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)  # released: no PID left behind to confuse the next reader
        os.close(fd)  # closing drops the flock
