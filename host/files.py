"""Result files that survive: atomic writes, a full disk said as such, and output folders
that one run at a time writes and that are never overwritten by accident.

- `write_atomic`: a temporary file beside the target, flushed to disk, then renamed over it
  (POSIX rename is atomic): a reader, a crash or a second signal finds the old file or the
  new one, never a part of either.
- `DiskFull`: ENOSPC (or EDQUOT) while writing, with the path and the space left; the CLI exits
  with 4 (`cli.EXIT_DISK_FULL`).
- `Reserve`: room kept on the output's disk while a run writes records, given back when the
  disk fills, so that summary.json, which says what was measured, can still be written.
- `claim`: an output folder, checked (a folder, writable) before the unit is touched, locked
  (`flock` on `.wirestamp.lock`, released by the kernel when the process ends, even by
  SIGKILL) while a run writes it, and refused if it holds any run's files — a crashed run's
  records without a summary count as results too.
"""
import contextlib
import errno
import fcntl
import os
import shutil
from pathlib import Path

__all__ = ["write_atomic", "DiskFull", "disk_full", "Reserve", "claim", "Claim",
           "RESULT_FILES"]

RESERVE_BYTES = 128 << 10       # a summary of 16 streams is about 20 KiB, written twice over

LOCK_NAME = ".wirestamp.lock"
# What any of wirestamp's commands leaves in its folder: one of them makes the folder a result.
RESULT_FILES = ("summary.json", "records.parquet", "results.json", "report.md", "demo.json",
                "tables.txt", "trial-1", "trial-01")


class DiskFull(OSError):
    """The disk (or the quota) is full: what could not be written, and the space left."""
    def __init__(self, path, detail=""):
        path = Path(path)
        free = _free_bytes(path)
        room = "" if free is None else f" ({free / 2**20:.1f} MiB free there)"
        super().__init__(errno.ENOSPC, f"no space left on the device writing {path}{room}"
                         + (f"; {detail}" if detail else ""))
        self.path = path

    def __str__(self):
        return self.strerror


def _free_bytes(path):
    for folder in (path, *path.parents):
        try:
            usage = shutil.disk_usage(folder)
        except OSError:
            continue
        return usage.free
    return None


def disk_full(error):
    """Whether `error` (an OSError, or pyarrow's, which may carry no errno) is a full disk."""
    if isinstance(error, DiskFull):
        return True
    if getattr(error, "errno", None) in (errno.ENOSPC, errno.EDQUOT):
        return True
    text = str(error)
    return "No space left on device" in text or "Disk quota exceeded" in text


def write_atomic(path, data):
    """`data` (str or bytes) into `path`, atomically (see the module); `DiskFull` if the disk
    is full, with nothing left behind but the old file, if any."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    raw = data.encode() if isinstance(data, str) else data
    try:
        with open(tmp, "wb") as f:
            f.write(raw)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as error:
        tmp.unlink(missing_ok=True)
        if disk_full(error):
            raise DiskFull(path) from None
        raise


class Reserve:
    """`size` bytes allocated in `folder` (a hidden file) until `release()`: a full disk then
    still has room for the files that say what was measured. `DiskFull` if there is not even
    that much room now: a run is better refused than started onto a full disk."""

    def __init__(self, folder, size=RESERVE_BYTES):
        self.path = Path(folder) / ".wirestamp.reserve"
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            try:
                try:
                    os.posix_fallocate(fd, 0, size)
                except OSError as error:
                    if disk_full(error):
                        raise
                    os.write(fd, bytes(size))       # a file system without fallocate
            finally:
                os.close(fd)
        except OSError as error:
            self.path.unlink(missing_ok=True)
            if disk_full(error):
                raise DiskFull(folder, f"a run needs {size >> 10} KiB free to start") from None
            raise

    def release(self):
        self.path.unlink(missing_ok=True)


class Claim:
    """A folder held by this process (`claim`); `release()` or the process's end frees it.
    A folder the claim made and nothing was written to (an ARP that got no answer, an
    interrupt before the streams started) is removed on release: nothing is left behind."""
    def __init__(self, folder, fd, made):
        self.folder, self._fd, self._made = folder, fd, made

    def release(self):
        if self._fd is None:
            return
        if self._made and [p.name for p in self.folder.iterdir()] == [LOCK_NAME]:
            (self.folder / LOCK_NAME).unlink()
            with contextlib.suppress(OSError):
                self.folder.rmdir()
        os.close(self._fd)          # the lock goes with the descriptor
        self._fd = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()


def claim(folder, overwrite=False, flag="--out"):
    """Make `folder` (and its parents), check that it is a writable folder, lock it against
    other wirestamp processes, and refuse it if it holds results (unless `overwrite`). Every
    refusal is a ValueError naming `flag`, raised before anything else is written."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"{flag}: {folder} is a file, not a folder")
    made = not folder.exists()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(folder / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as error:
        if disk_full(error):
            raise DiskFull(folder) from None
        raise ValueError(f"{flag}: cannot write in {folder}: {error.strerror or error}") \
            from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "another process"
        os.close(fd)
        raise ValueError(f"{flag}: {folder} is being written by another wirestamp run "
                         f"(pid {holder}); give another folder") from None
    if not overwrite:
        found = [name for name in RESULT_FILES if (folder / name).exists()]
        if found:
            os.close(fd)
            raise ValueError(f"{flag}: {folder} already holds a run's results ({found[0]}); "
                             f"give another folder or --overwrite")
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
    except OSError as error:
        os.close(fd)
        if disk_full(error):
            raise DiskFull(folder) from None
        raise ValueError(f"{flag}: cannot write in {folder}: {error.strerror or error}") \
            from None
    return Claim(folder, fd, made)
