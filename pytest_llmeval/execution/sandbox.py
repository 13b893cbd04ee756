"""Run generated code in a sandbox: a pool of sandboxed zygotes, one fresh process pair per sample.

Layers, outermost first (``README.md`` says what each protects against and what it does not):

- **namespaces** (optional, ``bwrap`` or ``unshare``): a new network namespace (no network),
  pid namespace (the zygote is pid 1; everything a sample started dies with ``kill(-1)``),
  ipc and uts namespaces; with ``bwrap`` also a read-only view of the system and Python
  only (no home directories, no project files) and a private ``/tmp``;
- **process**: each sample runs in processes forked for it, never in the caller's;
- **unprivileged uid** (required when running as root): the model's code runs under a uid
  of its own, chosen per slot, with no capabilities and ``no_new_privs``;
- **rlimits**: CPU time, address space, process count, file size, open files, no core;
- **wall-clock timeout**: the zygote kills every process of the sample when it runs out;
- **temporary directory**: a fresh one per sample (mode 0700), removed afterwards;
- **scrubbed environment**: only PATH, HOME/TMPDIR (the temporary directory) and the locale;
  stdin is ``/dev/null``.

Without the required layers no model code runs (:class:`SandboxUnavailable`). Without a
network namespace a suite refuses to run unless ``LLMEVAL_ALLOW_UNSANDBOXED=1``.

The zygote design (one long-lived sandboxed interpreter per worker that forks per sample)
exists for speed: starting ``bwrap`` and a fresh interpreter costs 50-100 ms per sample,
a fork of a warm zygote about a millisecond.
"""

from __future__ import annotations

import itertools
import json
import os
import queue
import select
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pytest_llmeval.errors import ConfigError, SandboxUnavailable

ALLOW_ENV = "LLMEVAL_ALLOW_UNSANDBOXED"
"""Set to ``1`` to run generated code where the network layer is missing (``--llmeval-allow-unsandboxed``)."""
LAUNCHER_ENV = "LLMEVAL_SANDBOX_LAUNCHER"
"""Force a launcher: ``bwrap``, ``unshare`` or ``none`` (default: the first that works, in that order)."""
PYTHON_ENV = "LLMEVAL_SANDBOX_PYTHON"
"""The interpreter that runs generated code (default: this one; any CPython >= 3.10 works)."""

REQUIRED_LAYERS = ("process", "rlimits", "wall_timeout", "temp_dir", "scrubbed_env", "unprivileged_uid")
OPTIONAL_LAYERS = ("network", "pid_namespace", "filesystem")
_CHILD_SOURCE = (Path(__file__).with_name("_child.py")).read_text(encoding="utf-8")
_SAFE_PATH = "/usr/local/bin:/usr/bin:/bin"
_POOLS = itertools.count()
STATUSES = ("passed", "failed", "timeout", "error")


@dataclass(frozen=True)
class Limits:
    """Per-sample limits. ``timeout_s`` is wall clock; the CPU limit is two seconds above it."""

    timeout_s: float = 5.0
    memory_mb: int = 512
    max_processes: int = 16
    file_size_mb: int = 16
    max_output_bytes: int = 64 * 1024

    def __post_init__(self) -> None:
        if not 0 < self.timeout_s <= 3600:
            raise ConfigError(f"timeout_s = {self.timeout_s}: give a number of seconds in (0, 3600]")
        if self.memory_mb < 32:
            raise ConfigError(f"memory_mb = {self.memory_mb}: a Python process needs at least 32 MB")
        if self.max_processes < 1 or self.file_size_mb < 0 or self.max_output_bytes < 0:
            raise ConfigError("max_processes must be >= 1, file_size_mb and max_output_bytes >= 0")


@dataclass(frozen=True)
class HumanEvalTests:
    """HumanEval's tests: ``test`` defines ``check(candidate)``; helpers may come from ``prompt``."""

    test: str
    entry_point: str
    prompt: str = ""

    def to_child(self) -> dict[str, Any]:
        return {"kind": "humaneval", "tests": self.test, "entry_point": self.entry_point,
                "prompt": self.prompt}


@dataclass(frozen=True)
class AssertTests:
    """Assert statements calling the completion's functions by name (MBPP), after ``setup``."""

    tests: str
    setup: str = ""

    def to_child(self) -> dict[str, Any]:
        return {"kind": "asserts", "tests": self.tests, "setup": self.setup}


@dataclass(frozen=True)
class Job:
    """One sample: the program the candidate process executes, and the tests run against it."""

    program: str
    tests: HumanEvalTests | AssertTests


@dataclass(frozen=True)
class SampleResult:
    """What became of one sample.

    ``status`` is ``passed``, ``failed`` (a wrong answer, an exception, a crash, a non-plain
    return value), ``timeout`` (counts as failed) or ``error`` (the harness could not judge
    the sample: the tests do not compile, the sandbox broke).
    """

    status: str
    reason: str = ""
    output: str = ""
    output_bytes: int = 0
    duration_s: float = 0.0

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Layer:
    name: str
    active: bool
    detail: str

    @property
    def required(self) -> bool:
        return self.name in REQUIRED_LAYERS


@dataclass(frozen=True)
class SandboxInfo:
    """The launcher in use and which layers are active."""

    launcher: str
    layers: tuple[Layer, ...]
    workers: int = 1

    def layer(self, name: str) -> Layer:
        return next(x for x in self.layers if x.name == name)

    def missing(self, *, required: bool) -> list[Layer]:
        return [x for x in self.layers if not x.active and x.required == required]

    def describe(self) -> str:
        on = [x.name for x in self.layers if x.active]
        off = [x.name for x in self.layers if not x.active]
        text = f"{self.launcher}: " + ", ".join(on)
        return text + (f" (missing: {', '.join(off)})" if off else "")

    def to_dict(self) -> dict[str, Any]:
        return {"launcher": self.launcher, "workers": self.workers,
                "layers": {x.name: {"active": x.active, "detail": x.detail} for x in self.layers}}


@dataclass
class _Launch:
    """How to start one zygote: the command line, its config, and where its samples' directories go."""

    launcher: str
    argv: list[str]
    cfg: dict[str, Any]
    cleanup: list[str] = field(default_factory=list)


def printable(text: str, keep: str = "") -> str:
    """``text`` with control characters escaped (``\\x1b``...): model output is shown in terminals."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() or c in keep else repr(c)[1:-1] for c in text)


# ----------------------------------------------------------------------------- launchers


def _python(site_packages: bool) -> str:
    override = os.environ.get(PYTHON_ENV)
    if override:
        return os.path.realpath(override)
    if site_packages:
        return sys.executable
    return os.path.realpath(getattr(sys, "_base_executable", None) or sys.executable)


def _python_flags(site_packages: bool) -> list[str]:
    return ["-I"] if site_packages else ["-I", "-S"]


def _python_roots(site_packages: bool) -> list[str]:
    roots = {sys.base_prefix, sys.base_exec_prefix, os.path.dirname(os.path.dirname(_python(False)))}
    if site_packages:
        import site
        import sysconfig

        roots.update({sys.prefix, sys.exec_prefix, *site.getsitepackages(),
                      sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]})
    return sorted(r for r in roots if r and os.path.isdir(r))


def _bwrap_argv(site_packages: bool, tmp_mb: int) -> list[str]:
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        raise FileNotFoundError("bwrap")
    argv = [bwrap, "--die-with-parent", "--new-session", "--unshare-pid", "--as-pid-1", "--unshare-net",
            "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try", "--hostname", "sandbox"]
    if os.geteuid() == 0:
        for cap in ("CAP_SETUID", "CAP_SETGID", "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_KILL"):
            argv += ["--cap-add", cap]
    else:
        argv += ["--unshare-user"]
    for top in ("/usr", "/etc"):
        argv += ["--ro-bind", top, top]
    for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        if os.path.islink(top):
            argv += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            argv += ["--ro-bind", top, top]
    made: set[str] = set()
    for root in _python_roots(site_packages):
        if root.startswith(("/usr/", "/etc/")) or root == "/usr":
            continue
        # Parents that bwrap creates are 0700: the sandbox's uid could not reach Python inside them.
        parts = Path(root).parts
        for i in range(2, len(parts)):
            parent = str(Path(*parts[:i]))
            if parent not in made:
                made.add(parent)
                argv += ["--perms", "0755", "--dir", parent]
        argv += ["--ro-bind", root, root]
    argv += ["--proc", "/proc", "--dev", "/dev", "--perms", "1777", "--size", str(tmp_mb * 1024 * 1024),
             "--tmpfs", "/tmp", "--perms", "1777", "--size", str(16 * 1024 * 1024), "--tmpfs", "/dev/shm",
             "--clearenv", "--setenv", "PATH", _SAFE_PATH, "--chdir", "/tmp", "--"]
    return argv


def _unshare_argv() -> list[str]:
    unshare = shutil.which("unshare")
    if unshare is None:
        raise FileNotFoundError("unshare")
    argv = [unshare, "--fork", "--kill-child", "--pid", "--mount-proc", "--net", "--ipc", "--uts"]
    if os.geteuid() != 0:
        argv.append("--map-root-user")
    return argv + ["--"]


def _mapped_uid_range() -> tuple[int, int]:
    best = (0, 65536)
    try:
        for line in Path("/proc/self/uid_map").read_text().splitlines():
            inside, _outside, count = (int(x) for x in line.split())
            if count > best[1] - best[0]:
                best = (inside, inside + count)
    except (OSError, ValueError):
        pass
    return best


def _free_ids(n: int) -> list[int]:
    """``n`` uids (also used as gids) that no account or group holds, chosen per process so that
    concurrent runs (xdist workers) rarely share one."""
    import grp
    import pwd

    lo, hi = _mapped_uid_range()
    start = max(lo, 200_000) if hi - max(lo, 200_000) > 1 << 16 else max(lo, 40_000)
    span = min(hi, 1 << 31) - start
    if span < 4 * n:
        raise SandboxUnavailable(f"no free range of uids to run generated code under (mapped: {lo}-{hi})",
                                 layer="unprivileged_uid")
    # Per process and per pool: two pools of one process (or two xdist workers) get other uids.
    candidate = start + ((os.getpid() * 64 + next(_POOLS) * 4 * n) % max(1, span - 64 * n))
    out: list[int] = []
    while len(out) < n and candidate < start + span:
        try:
            pwd.getpwuid(candidate)
        except KeyError:
            try:
                grp.getgrgid(candidate)
            except KeyError:
                out.append(candidate)
        candidate += 1
    return out


def _user_process_count() -> int:
    uid = os.getuid()
    count = 0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.stat(f"/proc/{entry}").st_uid == uid:
                    count += 1
            except OSError:
                continue
    return count


def _launch(launcher: str, slot_ids: tuple[int, int] | None, limits: Limits, site_packages: bool) -> _Launch:
    root = os.geteuid() == 0
    nproc = limits.max_processes if root else _user_process_count() + limits.max_processes + 8
    cfg: dict[str, Any] = {"pid1": launcher != "none", "nproc": nproc}
    if root and slot_ids is not None:
        cfg.update({"model_uid": slot_ids[0], "model_gid": slot_ids[0], "tests_uid": slot_ids[1],
                    "tests_gid": slot_ids[1]})
    cleanup: list[str] = []
    if launcher == "bwrap":
        prefix = _bwrap_argv(site_packages, tmp_mb=max(64, 4 * limits.file_size_mb))
        cfg["tmp"] = "/tmp"
    else:
        prefix = _unshare_argv() if launcher == "unshare" else []
        tmp = tempfile.mkdtemp(prefix="llmeval-exec-")
        os.chmod(tmp, 0o711)
        cfg["tmp"] = tmp
        cleanup.append(tmp)
    argv = prefix + [_python(site_packages), *_python_flags(site_packages), "-c", _CHILD_SOURCE,
                     json.dumps(cfg)]
    return _Launch(launcher, argv, cfg, cleanup)


# ----------------------------------------------------------------------------- one zygote


def _write_frame(fd: int, obj: object) -> None:
    data = json.dumps(obj, ensure_ascii=True).encode("ascii")
    view = memoryview(struct.pack(">I", len(data)) + data)
    while view:
        view = view[os.write(fd, view):]


def _read_frame(fd: int, timeout: float) -> Any:
    """One frame from the zygote, or ``None`` when it ended or did not answer in time."""
    import time

    deadline = time.monotonic() + timeout
    buf = bytearray()
    need = 4
    size = None
    while len(buf) < need:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            return None
        chunk = os.read(fd, max(1 << 16, need - len(buf)))
        if not chunk:
            return None
        buf += chunk
        if size is None and len(buf) >= 4:
            size = struct.unpack(">I", bytes(buf[:4]))[0]
            need = 4 + size
    return json.loads(bytes(buf[4:need]).decode("ascii"))


class _Zygote:
    """One sandboxed zygote process, serving one sample at a time."""

    def __init__(self, launch: _Launch, slot: int) -> None:
        self.launch = launch
        self.slot = slot
        self.proc = subprocess.Popen(  # noqa: S603 - argv built above from fixed parts
            launch.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env={"PATH": _SAFE_PATH, "LANG": "C.UTF-8"}, start_new_session=True, close_fds=True)
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.hello = _read_frame(self.proc.stdout.fileno(), timeout=60.0)
        if self.hello is None:
            err = self._stderr()
            self.kill()
            raise SandboxUnavailable(f"the {launch.launcher} sandbox did not start"
                                     + (f": {err}" if err else ""), layer="process")

    def _stderr(self) -> str:
        if self.proc.poll() is None or self.proc.stderr is None:
            return ""
        return self.proc.stderr.read().decode("utf-8", "replace").strip()[-800:]

    def run(self, job: Job, limits: Limits) -> SampleResult | None:
        """The sample's result; ``None`` when the zygote was gone before the sample was sent."""
        if not self.alive:
            return None
        payload = {"program": job.program, "tests": job.tests.to_child(),
                   "limits": {"timeout_s": limits.timeout_s, "memory_mb": limits.memory_mb,
                              "file_size_mb": limits.file_size_mb,
                              "max_output_bytes": limits.max_output_bytes}}
        assert self.proc.stdin is not None and self.proc.stdout is not None
        try:
            _write_frame(self.proc.stdin.fileno(), payload)
        except OSError:
            return None
        reply = _read_frame(self.proc.stdout.fileno(), timeout=limits.timeout_s + 30.0)
        if not isinstance(reply, dict) or reply.get("status") not in STATUSES:
            self.kill()
            return SampleResult("error", "the sandbox stopped answering")
        return SampleResult(status=reply["status"], reason=printable(str(reply.get("reason") or "")),
                            output=printable(str(reply.get("output") or ""), keep="\n\t"),
                            output_bytes=int(reply.get("output_bytes") or 0),
                            duration_s=float(reply.get("duration_s") or 0.0))

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def close(self) -> None:
        if self.proc.stdin is not None:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.kill()
        self._cleanup()

    def kill(self) -> None:
        import signal

        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        self._cleanup()

    def _cleanup(self) -> None:
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()
        for path in self.launch.cleanup:
            shutil.rmtree(path, ignore_errors=True)


# ----------------------------------------------------------------------------- probing


def _layers(launch: _Launch, hello: dict[str, Any]) -> tuple[Layer, ...]:
    root = os.geteuid() == 0
    try:
        own_netns = os.readlink("/proc/self/ns/net")
    except OSError:
        own_netns = None
    net = launch.launcher != "none" and hello.get("netns") not in (None, own_netns)
    pid1 = hello.get("pid") == 1
    if root:
        uid_ok = hello.get("uid_switch") == "ok"
        uid_detail = (f"model code runs as uid {launch.cfg.get('model_uid')}, tests as uid "
                      f"{launch.cfg.get('tests_uid')}" if uid_ok else "running as root, and the switch to an "
                      f"unprivileged uid failed: {hello.get('uid_switch')}")
    else:
        uid_ok, uid_detail = True, f"not root: runs as the invoking user (uid {os.getuid()})"
    return (
        Layer("process", True, "a fresh candidate process and test process per sample"),
        Layer("rlimits", True, "CPU time, address space, processes, file size, open files, no core"),
        Layer("wall_timeout", True, "every process of a sample is killed when its time is up"),
        Layer("temp_dir", True, "a fresh 0700 directory per sample, removed afterwards"),
        Layer("scrubbed_env", True, "PATH, HOME, TMPDIR and the locale only; stdin is /dev/null"),
        Layer("unprivileged_uid", uid_ok, uid_detail),
        Layer("network", net, "a new network namespace (no interfaces but its own loopback)" if net else
              "no network namespace: install bubblewrap (Debian: apt-get install bubblewrap)"),
        Layer("pid_namespace", pid1, "the sandbox's own pid namespace" if pid1 else
              "no pid namespace: processes that leave the sample's session are found through /proc"),
        Layer("filesystem", launch.launcher == "bwrap",
              "read-only system and Python only; private /tmp" if launch.launcher == "bwrap" else
              "the host's filesystem, with the sandbox uid's permissions"),
    )


def _candidates(forced: str | None) -> list[str]:
    forced = forced or os.environ.get(LAUNCHER_ENV) or None
    if forced is not None:
        if forced not in ("bwrap", "unshare", "none"):
            raise ConfigError(f"{LAUNCHER_ENV}={forced!r}: use bwrap, unshare or none")
        return [forced]
    return ["bwrap", "unshare", "none"]


def allow_unsandboxed_from_env() -> bool:
    return os.environ.get(ALLOW_ENV, "").strip().lower() in ("1", "true", "yes")


# ----------------------------------------------------------------------------- the pool


class Sandbox:
    """A pool of sandboxed zygotes; :meth:`run` executes jobs on all of them.

    Args:
        limits: per-sample limits.
        workers: concurrent samples (default: the number of usable CPUs).
        launcher: ``bwrap``, ``unshare`` or ``none``; default: the first that works.
        allow_unsandboxed: run although the network layer is missing (default: from
            ``LLMEVAL_ALLOW_UNSANDBOXED``).
        site_packages: let the model's code import installed packages (default: standard
            library only).

    Raises:
        SandboxUnavailable: a required layer is missing, or the network layer is missing
            and running without it was not allowed. Nothing has run then.
    """

    def __init__(self, limits: Limits | None = None, *, workers: int | None = None,
                 launcher: str | None = None, allow_unsandboxed: bool | None = None,
                 site_packages: bool = False) -> None:
        self.limits = limits or Limits()
        self.site_packages = site_packages
        if workers is None:
            workers = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        self.n_workers = max(1, int(workers or 1))
        self._ids = _free_ids(2 * self.n_workers) if os.geteuid() == 0 else None
        self._idle: queue.Queue[_Zygote] = queue.Queue()
        self._all: list[_Zygote] = []
        self._lock = threading.Lock()
        # Every zygote is started from this one long-lived thread: bwrap's --die-with-parent (and the
        # zygote's own parent-death signal) fire when the *thread* that started it ends.
        self._spawner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="llmeval-sandbox-spawn")
        allow = allow_unsandboxed_from_env() if allow_unsandboxed is None else allow_unsandboxed
        first: _Zygote | None = None
        tried: list[str] = []
        for name in _candidates(launcher):
            try:
                zygote = self._spawner.submit(
                    _Zygote, _launch(name, self._slot(0), self.limits, site_packages), 0).result()
            except (SandboxUnavailable, OSError) as exc:
                tried.append(f"{name}: {exc}")
                continue
            info = SandboxInfo(name, _layers(zygote.launch, zygote.hello), self.n_workers)
            missing = info.missing(required=True)
            if missing:
                zygote.close()
                tried.append(f"{name}: " + "; ".join(f"no '{x.name}' layer ({x.detail})" for x in missing))
                continue
            first = zygote
            break
        if first is None:
            self._spawner.shutdown()
            raise SandboxUnavailable("generated code will not run: no sandbox with every required layer "
                                     "could be started (" + "; ".join(tried) + ")", layer="process")
        self.info = info
        if not info.layer("network").active and not allow:
            first.close()
            self._spawner.shutdown()
            raise SandboxUnavailable(
                "generated code will not run without the 'network' layer: "
                f"{info.layer('network').detail}" + (f" (tried: {'; '.join(tried)})" if tried else "")
                + f"; to run it anyway, pass --llmeval-allow-unsandboxed or set {ALLOW_ENV}=1",
                layer="network")
        self._all.append(first)
        self._idle.put(first)
        self._free_slots = list(range(1, self.n_workers))

    def _slot(self, i: int) -> tuple[int, int] | None:
        if self._ids is None:
            return None
        return self._ids[2 * i], self._ids[2 * i + 1]

    def _start(self, slot: int) -> _Zygote:
        launch = _launch(self.info.launcher, self._slot(slot), self.limits, self.site_packages)
        return self._spawner.submit(_Zygote, launch, slot).result()

    def _take(self) -> _Zygote:
        """An idle zygote, or a new one on a free slot; waits while every zygote is busy."""
        while True:
            try:
                return self._idle.get_nowait()
            except queue.Empty:
                pass
            with self._lock:
                slot = self._free_slots.pop(0) if self._free_slots else None
            if slot is not None:
                try:
                    z = self._start(slot)
                except (SandboxUnavailable, OSError):
                    with self._lock:
                        self._free_slots.append(slot)
                    raise
                with self._lock:
                    self._all.append(z)
                return z
            try:
                return self._idle.get(timeout=0.2)
            except queue.Empty:
                continue

    def _run_one(self, job: Job, attempts: int = 3) -> SampleResult:
        for _ in range(attempts):
            result = self._attempt(job)
            if result is not None:
                return result
        return SampleResult("error", "the sandbox process kept dying before the sample could be sent")

    def _attempt(self, job: Job) -> SampleResult | None:
        try:
            z = self._take()
        except (SandboxUnavailable, OSError) as exc:
            return SampleResult("error", f"the sandbox could not be restarted: {exc}")
        try:
            return z.run(job, self.limits)
        finally:
            if z.alive:
                self._idle.put(z)
            else:
                # The model's code cannot reach a zygote that is pid 1 of its namespace; without
                # namespaces it can. Its slot is started afresh for the next sample.
                z.kill()
                with self._lock:
                    self._all.remove(z)
                    self._free_slots.append(z.slot)

    def run(self, jobs: Sequence[Job], progress: Callable[[int], None] | None = None) -> list[SampleResult]:
        """Execute every job (in parallel over the workers); results in the jobs' order."""
        if not jobs:
            return []
        results: list[SampleResult | None] = [None] * len(jobs)

        def one(i: int) -> None:
            results[i] = self._run_one(jobs[i])
            if progress is not None:
                progress(1)

        with ThreadPoolExecutor(max_workers=self.n_workers, thread_name_prefix="llmeval-exec") as pool:
            for fut in [pool.submit(one, i) for i in range(len(jobs))]:
                fut.result()
        return [r if r is not None else SampleResult("error", "not run") for r in results]

    def run_one(self, job: Job) -> SampleResult:
        return self.run([job])[0]

    def close(self) -> None:
        with self._lock:
            for z in self._all:
                z.close()
            self._all.clear()
        self._spawner.shutdown()

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
