"""Run a Python script against a folder that really refuses writes: a read-only mount or a full disk.

As root, ``chmod`` does not stop writes, so the honest way is a mount: ``unshare -rm``
(a user and mount namespace, no privileges needed) bind-mounts the folder read-only,
or mounts a tiny tmpfs over it. Where user namespaces are not allowed, a read-only
folder falls back to ``chmod`` (honest for a non-root user only) and a full disk to
``RLIMIT_FSIZE`` (writes past the limit fail with EFBIG, as SQLite and Python see a
full disk). Each run says which method it used.
"""

from __future__ import annotations

import functools
import os
import resource
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest


@functools.cache
def namespaces_work() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "-rm", "sh", "-c", "mount -t tmpfs tmpfs /mnt 2>/dev/null || "
                            "mount -t tmpfs tmpfs /tmp"], capture_output=True)
    return probe.returncode == 0


def unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI must run this test)")
    pytest.skip(reason)


def run_confined(kind: str, folder: Path, script: str, *args: str,
                 size: str = "256k") -> tuple[subprocess.CompletedProcess[str], str]:
    """Run ``python -c script folder *args`` with ``folder`` read-only (``ro``) or on a full disk (``full``).

    For ``full``, ``folder`` becomes a tmpfs of ``size`` (its earlier content is hidden).
    Returns the finished process and the method used.
    """
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    cmd = [sys.executable, "-c", script, str(folder), *args]
    if namespaces_work():
        q = shlex_quote(str(folder))
        if kind == "ro":
            setup = f"mount --bind {q} {q} && mount -o remount,ro,bind {q}"
            method = "read-only bind mount in a user namespace (unshare -rm)"
        else:
            setup = f"mount -t tmpfs -o size={size} tmpfs {q}"
            method = f"tmpfs of {size} in a user namespace (unshare -rm)"
        shell = f"{setup} && exec " + " ".join(shlex_quote(c) for c in cmd)
        proc = subprocess.run(["unshare", "-rm", "sh", "-c", shell], capture_output=True, text=True,
                              env=env, timeout=300)
        return proc, method
    if kind == "ro":
        if os.geteuid() == 0:
            unavailable("no user namespaces here, and chmod does not stop root")
        folder.chmod(0o555)
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
        finally:
            folder.chmod(0o755)
        return proc, "chmod 555 as a non-root user"
    limit = _size_bytes(size)

    def cap() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300, preexec_fn=cap)
    return proc, f"RLIMIT_FSIZE of {size}"


def shlex_quote(s: str) -> str:
    import shlex

    return shlex.quote(s)


def _size_bytes(size: str) -> int:
    units = {"k": 1024, "m": 1024 * 1024}
    return int(size[:-1]) * units[size[-1].lower()] if size[-1].lower() in units else int(size)
