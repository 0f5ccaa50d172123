"""Write stage: put encoded, verified bytes on disk without ever leaving a partial file.

Bytes go to a temporary file beside the target, are flushed and fsynced, then renamed over
the target in one step: a crash, a full disk or a kill leaves either the complete old state
or the complete new file. Inputs are never overwritten, and existing outputs are kept unless
the caller asks to overwrite them. A temporary file is named after the process that writes
it (``.<name>.<pid>.<random>.part``), so one left behind by a killed run is removed by the
next write to the same target once its process is gone.
"""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path

from alphacut.errors import OutputError


class Staged:
    """Bytes written and fsynced to a temporary file beside ``path``, not yet in its place:
    ``commit`` renames it over the target in one step, ``discard`` removes it."""

    def __init__(self, path: Path, tmp: str):
        self.path, self.tmp = path, tmp

    def commit(self) -> None:
        try:
            os.chmod(self.tmp, 0o644)
            os.replace(self.tmp, self.path)
        except OSError as e:
            self.discard()
            raise OutputError(f"{self.path}: cannot write: {e.strerror or e}") from None

    def discard(self) -> None:
        try:
            os.unlink(self.tmp)
        except OSError:
            pass


def stage(path: Path, data: bytes, *, overwrite: bool = False, protect: Path | None = None) -> Staged:
    """The checks and the temporary file of ``write_atomic``, without the rename, so that a
    caller can write while it still checks the bytes, and rename only once they passed."""
    path = Path(path)
    if protect is not None and path.exists() and protect.exists():
        try:
            if path.samefile(protect):
                raise OutputError(f"{path}: refusing to overwrite the input file")
        except OSError:
            pass
    if path.exists() and not overwrite:
        raise OutputError(f"{path}: exists (use --overwrite to replace it, or --skip-existing)")
    parent = path.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(f"{parent}: cannot create output directory: {e.strerror or e}") from None
    _remove_stale_parts(path)
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".part", dir=parent)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        staged, tmp = Staged(path, tmp), None
        return staged
    except OSError as e:
        reason = "disk full" if e.errno == errno.ENOSPC else (e.strerror or str(e))
        raise OutputError(f"{path}: cannot write: {reason}") from None
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass


def write_atomic(path: Path, data: bytes, *, overwrite: bool = False, protect: Path | None = None) -> None:
    stage(path, data, overwrite=overwrite, protect=protect).commit()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_stale_parts(path: Path) -> None:
    """Delete temporary files for ``path`` left by processes that no longer exist."""
    prefix = f".{path.name}."
    try:
        candidates = [p for p in path.parent.iterdir() if p.name.startswith(prefix) and p.name.endswith(".part")]
    except OSError:
        return
    for p in candidates:
        pid_text = p.name[len(prefix) :].split(".", 1)[0]
        if pid_text.isdigit() and int(pid_text) != os.getpid() and not _pid_alive(int(pid_text)):
            try:
                p.unlink()
            except OSError:
                pass
