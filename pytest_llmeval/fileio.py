"""Writing output files (results, reports) so that a failure never leaves half a file.

:func:`write_atomic` writes to a temporary file in the target's folder, flushes
it to disk and renames it over the target: readers see the old file or the new
one, never a mixture. When the disk is full, the folder is read-only or the
path is wrong, the temporary file is removed and a
:class:`~pytest_llmeval.errors.WriteError` says what failed and what to do;
the previous file, if any, is untouched.
"""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path

from pytest_llmeval.errors import WriteError

_HINTS = {
    errno.ENOSPC: "the disk is full: free space or write elsewhere",
    errno.EDQUOT: "the disk quota is exhausted: free space or write elsewhere",
    errno.EFBIG: "the file is larger than this file system or process allows",
    errno.EROFS: "the file system is read-only: write elsewhere",
    errno.EACCES: "permission denied: write elsewhere or fix the folder's permissions",
    errno.EPERM: "permission denied: write elsewhere or fix the folder's permissions",
}


def write_atomic(path: str | os.PathLike[str], data: str | bytes, *, what: str = "file") -> None:
    """Write ``data`` (text as UTF-8) to ``path`` atomically; parent folders are created.

    Args:
        path: the file to write.
        data: its whole content.
        what: what the file is, for the error message ("results file", "HTML report").

    Raises:
        WriteError: the file could not be written (disk full, read-only, permissions...);
            no temporary file is left and an existing ``path`` is unchanged.
    """
    target = Path(path)
    blob = data.encode("utf-8") if isinstance(data, str) else data
    tmp: str | None = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        with os.fdopen(fd, "wb") as fh:
            view = memoryview(blob)
            while view:
                written = fh.write(view)
                view = view[written:]
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
        tmp = None
    except OSError as exc:
        hint = _HINTS.get(exc.errno or 0, "")
        reason = exc.strerror or str(exc)
        raise WriteError(
            f"cannot write the {what} {target}: {reason}"
            + (f" ({hint})" if hint else "")
            + (". The previous file is unchanged" if target.exists() else ". Nothing was written")
        ) from exc
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass
