"""The code that runs inside the sandbox: a zygote that forks one candidate and one test process per sample.

This file is executed as ``python -I -S -c <this source> <config json>``: it imports the
standard library only and nothing of the package, so that it runs with no site-packages
and no PYTHONPATH. It must stay importable on its own (the parent reads its source).

Per sample the zygote forks two processes:

- the *candidate* process, under the sandbox's uid, with rlimits, in a fresh temporary
  directory: it executes the model's code and answers calls to its functions over a
  pipe, sending back plain built-in values only;
- the *test* process: it runs the dataset's tests (trusted code, never the model's) with
  proxies in place of the model's functions, and writes a per-sample nonce to the zygote
  when every test has run. The nonce is drawn after the candidate was forked, so the
  model's code never holds it; a candidate that exits, crashes or hangs cannot produce a
  pass.

When the sample ends (tests done, or the wall clock ran out) the zygote kills every
process the sample left behind, removes its directory and answers the parent.
"""

from __future__ import annotations

import ast
import base64
import builtins
import ctypes
import json
import os
import resource
import select
import shutil
import signal
import struct
import sys
import tempfile
import time
import traceback

MAX_FRAME = 32 * 1024 * 1024
"""Largest message between the candidate and the test process (a bigger one fails the sample)."""
MAX_DEPTH = 64
"""Deepest nesting of a value passed to or returned by the candidate."""
REPR_CHARS = 160

PR_SET_DUMPABLE = 4
PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS = 38
PR_SET_PDEATHSIG = 1


try:
    _LIBC: ctypes.CDLL | None = ctypes.CDLL(None, use_errno=True)
except OSError:
    _LIBC = None


def _prctl(option: int, value: int) -> bool:
    if _LIBC is None:
        return False
    try:
        return _LIBC.prctl(option, value, 0, 0, 0) == 0
    except AttributeError:
        return False


# ----------------------------------------------------------------------------- framing


def write_frame(fd: int, obj: object) -> None:
    data = json.dumps(obj, ensure_ascii=True, allow_nan=True).encode("ascii")
    buf = struct.pack(">I", len(data)) + data
    view = memoryview(buf)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _read_exact(fd: int, n: int) -> bytes | None:
    parts = []
    while n:
        chunk = os.read(fd, min(n, 1 << 20))
        if not chunk:
            return None
        parts.append(chunk)
        n -= len(chunk)
    return b"".join(parts)


def read_frame(fd: int, limit: int = MAX_FRAME) -> object:
    """One message, or ``None`` at end of stream; ``ValueError`` for anything malformed."""
    head = _read_exact(fd, 4)
    if head is None:
        return None
    (size,) = struct.unpack(">I", head)
    if size > limit:
        raise ValueError(f"message of {size} bytes exceeds the limit of {limit}")
    body = _read_exact(fd, size)
    if body is None:
        return None
    return json.loads(body.decode("ascii"))


# ----------------------------------------------------------------------------- plain values

_SCALARS = (type(None), bool, int, float, str)


class NotPlain(TypeError):
    """A value that is not made of built-in types only."""


def encode(value: object, depth: int = 0) -> object:
    """A JSON tree for a value built from exact built-in types (no subclasses, no custom objects)."""
    if depth > MAX_DEPTH:
        raise NotPlain(f"value nested deeper than {MAX_DEPTH} levels")
    t = type(value)
    if t in _SCALARS:
        return value
    if t is list:
        return {"l": [encode(v, depth + 1) for v in value]}  # type: ignore[attr-defined]
    if t is tuple:
        return {"t": [encode(v, depth + 1) for v in value]}  # type: ignore[attr-defined]
    if t is set or t is frozenset:
        return {"s" if t is set else "fs": [encode(v, depth + 1) for v in value]}  # type: ignore[attr-defined]
    if t is dict:
        return {"d": [[encode(k, depth + 1), encode(v, depth + 1)] for k, v in value.items()]}  # type: ignore[attr-defined]
    if t is bytes:
        return {"b": base64.b64encode(value).decode("ascii")}  # type: ignore[arg-type]
    if t is complex:
        return {"c": [value.real, value.imag]}  # type: ignore[attr-defined]
    raise NotPlain(f"a {t.__module__}.{t.__qualname__} object, not a plain built-in value")


def decode(tree: object, depth: int = 0) -> object:
    """Rebuild a value from :func:`encode`'s tree, accepting nothing but built-in types."""
    if depth > MAX_DEPTH:
        raise ValueError("value nested too deeply")
    t = type(tree)
    if t in _SCALARS:
        return tree
    if t is not dict or len(tree) != 1:  # type: ignore[arg-type]
        raise ValueError(f"malformed value ({t.__name__})")
    ((tag, body),) = tree.items()  # type: ignore[attr-defined]
    if tag == "b" and type(body) is str:
        return base64.b64decode(body.encode("ascii"), validate=True)
    if tag == "c" and type(body) is list and len(body) == 2 and all(type(x) in (int, float) for x in body):
        return complex(body[0], body[1])
    if type(body) is not list:
        raise ValueError(f"malformed value (tag {tag!r})")
    if tag == "d":
        out = {}
        for pair in body:
            if type(pair) is not list or len(pair) != 2:
                raise ValueError("malformed dict item")
            out[decode(pair[0], depth + 1)] = decode(pair[1], depth + 1)
        return out
    items = [decode(v, depth + 1) for v in body]
    if tag == "l":
        return items
    if tag == "t":
        return tuple(items)
    if tag == "s":
        return set(items)
    if tag == "fs":
        return frozenset(items)
    raise ValueError(f"unknown value tag {tag!r}")


def short_repr(value: object) -> str:
    try:
        text = repr(value)
    except Exception:  # noqa: BLE001 - trusted values only, but never let a repr fail a report
        text = f"<{type(value).__name__}>"
    return text if len(text) <= REPR_CHARS else text[: REPR_CHARS - 3] + "..."


# ----------------------------------------------------------------------------- process setup


def _close_fds_except(keep: dict[int, int]) -> None:
    """Put each ``old`` descriptor on ``new`` (a mapping) and close every other descriptor above 2."""
    import fcntl

    staged = {new: fcntl.fcntl(old, fcntl.F_DUPFD, 100) for old, new in keep.items()}
    for new, src in staged.items():
        os.dup2(src, new)
    for fd in _open_fds():
        if fd > 2 and fd not in staged:
            try:
                os.close(fd)
            except OSError:
                pass


def _open_fds() -> list[int]:
    try:
        return [int(x) for x in os.listdir("/proc/self/fd")]
    except OSError:
        return list(range(3, 1024))


def _limit(which: int, value: int) -> None:
    _soft, hard = resource.getrlimit(which)
    if hard != resource.RLIM_INFINITY:
        value = min(value, hard)
    resource.setrlimit(which, (value, value))


def _apply_limits(limits: dict, nproc: int) -> None:
    cpu = int(limits["timeout_s"]) + 2
    _limit(resource.RLIMIT_CPU, cpu)
    _limit(resource.RLIMIT_AS, int(limits["memory_mb"]) * 1024 * 1024)
    _limit(resource.RLIMIT_FSIZE, int(limits["file_size_mb"]) * 1024 * 1024)
    _limit(resource.RLIMIT_NPROC, nproc)
    _limit(resource.RLIMIT_CORE, 0)
    _limit(resource.RLIMIT_NOFILE, 256)


def _drop_privileges(uid: int | None, gid: int | None) -> None:
    if uid is None:
        return
    if gid is None:
        gid = uid
    os.setgroups([])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
    if os.getuid() != uid or os.geteuid() != uid or os.getgid() != gid:
        raise PermissionError("could not switch to the sandbox's unprivileged uid")


def _scrub_environment(home: str) -> None:
    os.environ.clear()
    os.environ.update({"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": home, "TMPDIR": home,
                       "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"})


def _reset_signals() -> None:
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGCHLD):
        signal.signal(sig, signal.SIG_DFL)


# ----------------------------------------------------------------------------- the candidate process


def candidate_main(job: dict, req_r: int, resp_w: int, out_w: int, workdir: str, cfg: dict) -> None:
    """Run the model's code and serve calls to its functions. Never returns."""
    code = 70
    try:
        if not cfg["pid1"]:
            os.setsid()
        devnull = os.open(os.devnull, os.O_RDONLY)
        _close_fds_except({devnull: 0, out_w: 1, req_r: 3, resp_w: 4})
        os.dup2(1, 2)
        os.chdir(workdir)
        _scrub_environment(workdir)
        _reset_signals()
        _apply_limits(job["limits"], cfg["nproc"])
        _drop_privileges(cfg.get("model_uid"), cfg.get("model_gid"))
        _prctl(PR_SET_NO_NEW_PRIVS, 1)
        sys.stdin = open(0, encoding="utf-8", closefd=False)  # noqa: SIM115 - lives as long as the process
        sys.stdout = open(1, "w", encoding="utf-8", errors="backslashreplace", closefd=False)  # noqa: SIM115
        sys.stderr = open(2, "w", encoding="utf-8", errors="backslashreplace", closefd=False)  # noqa: SIM115
        sys.argv = ["candidate"]
        sys.path[:] = [p for p in sys.path if p] + [workdir]
        code = _serve(job, 3, 4)
    except BaseException:  # noqa: BLE001 - the process must end here, whatever happened
        try:
            os.write(2, traceback.format_exc().encode("utf-8", "replace")[-4000:])
        except OSError:
            pass
    os._exit(code)


def _serve(job: dict, req_r: int, resp_w: int) -> int:
    namespace: dict = {"__name__": "__candidate__", "__builtins__": builtins}
    send = write_frame
    try:
        exec(compile(job["program"], "<completion>", "exec"), namespace)  # noqa: S102 - the sandboxed part
    except SystemExit as exc:
        _flush()
        send(resp_w, {"load_error": f"the completion called sys.exit({exc.code!r}) while loading"})
        return 0
    except BaseException as exc:  # noqa: BLE001 - any failure of the model's code is a failed sample
        _flush()
        send(resp_w, {"load_error": _describe_exception(exc, "<completion>")})
        return 0
    _flush()
    send(resp_w, {"ready": True})
    while True:
        msg = read_frame(req_r)
        if msg is None:
            return 0
        if not isinstance(msg, dict):
            send(resp_w, {"raise": "the call could not be read"})
            continue
        name = msg.get("call")
        fn = namespace.get(name) if type(name) is str else None
        if not callable(fn):
            send(resp_w, {"raise": f"NameError: the completion defines no function '{name}'"})
            continue
        try:
            args = decode(msg["args"])
            kwargs = {k: decode(v) for k, v in msg["kwargs"].items()}
            if not isinstance(args, list):
                raise TypeError("malformed call")
            value = fn(*args, **kwargs)
            reply = {"value": encode(value)}
        except NotPlain as exc:
            reply = {"not_plain": f"{name}() returned {exc}"}
        except SystemExit as exc:
            reply = {"raise": f"SystemExit: {name}() called sys.exit({exc.code!r})"}
        except BaseException as exc:  # noqa: BLE001 - reported to the tests as the candidate's exception
            reply = {"raise": _describe_exception(exc, "<completion>")}
        _flush()
        try:
            send(resp_w, reply)
        except ValueError:
            send(resp_w, {"not_plain": f"{name}() returned a value that cannot be sent (too large)"})


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # noqa: BLE001,S110 - a closed or broken stream is the model's doing
            pass


def _describe_exception(exc: BaseException, filename: str) -> str:
    try:
        text = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    except Exception:  # noqa: BLE001 - the model's exception may have a hostile __str__
        text = type(exc).__name__
    line = None
    try:
        for frame in traceback.extract_tb(exc.__traceback__):
            if frame.filename == filename:
                line = frame.lineno
    except Exception:  # noqa: BLE001,S110
        pass
    where = f" (line {line} of the completion)" if line else ""
    return (text[:600] + where) if text else type(exc).__name__


# ----------------------------------------------------------------------------- the test process


class CandidateError(Exception):
    """The candidate raised, crashed, or answered with something that is not a plain value."""


class _Channel:
    def __init__(self, req_w: int, resp_r: int) -> None:
        self.req_w = req_w
        self.resp_r = resp_r
        self.last_call = ""
        self.calls = 0

    def receive(self) -> dict:
        try:
            msg = read_frame(self.resp_r)
        except (ValueError, UnicodeDecodeError) as exc:
            raise CandidateError(f"the candidate's process sent a malformed answer ({exc})") from None
        if msg is None:
            raise CandidateError("the candidate's process exited before answering")
        if type(msg) is not dict:
            raise CandidateError("the candidate's process sent a malformed answer")
        return msg

    def call(self, name: str, args: tuple, kwargs: dict) -> object:
        shown = ", ".join([short_repr(a) for a in args] + [f"{k}={short_repr(v)}" for k, v in kwargs.items()])
        self.last_call = f"{name}({shown})"
        self.calls += 1
        try:
            write_frame(self.req_w, {"call": name, "args": encode(list(args)),
                                     "kwargs": {k: encode(v) for k, v in kwargs.items()}})
        except NotPlain as exc:
            raise HarnessError(f"the tests pass {exc} to {name}(); only plain values can cross into the "
                               f"sandbox") from None
        except (BrokenPipeError, OSError):
            raise CandidateError(f"calling {self.last_call}: the candidate's process exited before "
                                 "answering") from None
        try:
            msg = self.receive()
        except CandidateError as exc:
            raise CandidateError(f"calling {self.last_call}: {exc}") from None
        if "value" in msg:
            try:
                value = decode(msg["value"])
            except (ValueError, TypeError) as exc:
                raise CandidateError(f"the candidate's process sent a malformed value ({exc})") from None
            self.last_call += f" returned {short_repr(value)}"
            return value
        if "not_plain" in msg:
            raise CandidateError(str(msg["not_plain"])[:600])
        raise CandidateError(f"{name}() raised {str(msg.get('raise'))[:600]}")


class HarnessError(Exception):
    """The tests themselves cannot run here (not the model's fault)."""


def _proxy(channel: _Channel, name: str):  # noqa: ANN202 - a plain function stands in for the model's
    def candidate(*args: object, **kwargs: object) -> object:
        return channel.call(name, args, kwargs)

    candidate.__name__ = candidate.__qualname__ = name
    return candidate


def _free_names(tree: ast.AST) -> list[str]:
    """Names the tests read but never bind: the functions the completion must define."""
    bound = set()
    loaded = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            if isinstance(node.ctx, ast.Load):
                loaded.append(node.id)
            else:
                bound.add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            bound.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
    return [n for n in dict.fromkeys(loaded) if n not in bound and not hasattr(builtins, n)]


def tests_main(job: dict, req_w: int, resp_r: int, res_w: int, nonce: str, cfg: dict) -> None:
    """Run the tests against proxies of the model's functions; report with the nonce. Never returns."""
    try:
        if not cfg["pid1"]:
            os.setsid()
        devnull = os.open(os.devnull, os.O_RDWR)
        _close_fds_except({devnull: 0, req_w: 3, resp_r: 4, res_w: 5})
        os.dup2(0, 1)
        os.dup2(0, 2)
        os.chdir("/")
        _scrub_environment("/")
        _reset_signals()
        _apply_limits(job["limits"], cfg["nproc"])
        _drop_privileges(cfg.get("tests_uid"), cfg.get("tests_gid"))
        _prctl(PR_SET_DUMPABLE, 0)
        _prctl(PR_SET_NO_NEW_PRIVS, 1)
        status, reason = _run_tests(job["tests"], _Channel(3, 4))
        write_frame(5, {"nonce": nonce, "status": status, "reason": reason})
    except BaseException:  # noqa: BLE001 - no nonce is written: the zygote reports the sample failed
        try:
            write_frame(5, {"crash": traceback.format_exc()[-2000:]})
        except Exception:  # noqa: BLE001,S110
            pass
    os._exit(0)


def _run_tests(spec: dict, channel: _Channel) -> tuple[str, str]:
    try:
        hello = channel.receive()
    except CandidateError as exc:
        return "failed", f"the completion did not load: {exc}"
    if "load_error" in hello:
        return "failed", f"the completion failed to load: {str(hello['load_error'])[:800]}"
    if hello.get("ready") is not True:
        return "failed", "the candidate's process sent a malformed greeting"
    ns: dict = {"__name__": "__tests__", "__builtins__": builtins}
    kind = spec["kind"]
    test_src = spec["tests"]
    try:
        if kind == "humaneval":
            entry = spec["entry_point"]
            prompt = spec.get("prompt") or ""
            if prompt:
                try:
                    exec(compile(prompt, "<prompt>", "exec"), ns)  # noqa: S102 - the dataset's own code
                except Exception:  # noqa: BLE001,S110 - a prompt that is not a complete module defines nothing
                    pass
            proxy = _proxy(channel, entry)
            ns[entry] = proxy
            exec(compile(test_src, "<tests>", "exec"), ns)  # noqa: S102 - the dataset's tests
            check = ns.get("check")
            if not callable(check):
                raise HarnessError("the test code defines no check(candidate) function")
            check(proxy)
        else:
            setup = spec.get("setup") or ""
            if setup:
                exec(compile(setup, "<setup>", "exec"), ns)  # noqa: S102 - the dataset's setup code
            tree = ast.parse(test_src, "<tests>")
            for name in _free_names(tree):
                if name in ns:
                    continue
                if name in sys.stdlib_module_names:
                    # MBPP's tests use modules the reference code imported (math.isclose...).
                    ns[name] = __import__(name)
                else:
                    ns[name] = _proxy(channel, name)
            exec(compile(tree, "<tests>", "exec"), ns)  # noqa: S102 - the dataset's tests
    except HarnessError as exc:
        return "error", str(exc)
    except SyntaxError as exc:
        return "error", f"the tests do not compile: {exc}"
    except CandidateError as exc:
        return "failed", str(exc)
    except BaseException as exc:  # noqa: BLE001 - a failed assertion or any error in the tests
        return "failed", _test_failure(exc, test_src, channel)
    if channel.calls == 0:
        return "failed", "the tests never called the candidate"
    return "passed", ""


def _test_failure(exc: BaseException, test_src: str, channel: _Channel) -> str:
    lineno = None
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.filename == "<tests>":
            lineno = frame.lineno
    what = type(exc).__name__ + (f": {str(exc)[:300]}" if str(exc) else "")
    parts = [what]
    if lineno is not None:
        lines = test_src.splitlines()
        text = lines[lineno - 1].strip() if 0 < lineno <= len(lines) else ""
        parts.append(f"at test line {lineno}: {text[:300]}")
    if channel.last_call:
        parts.append(f"last call: {channel.last_call}")
    return "; ".join(parts)


# ----------------------------------------------------------------------------- the zygote


class Zygote:
    """Serves jobs from the parent, one at a time: fork the sample's two processes, wait, clean up."""

    def __init__(self, cfg: dict, cmd_r: int, reply_w: int) -> None:
        self.cfg = cfg
        self.cmd_r = cmd_r
        self.reply_w = reply_w
        self.pid1 = cfg["pid1"]

    def serve(self) -> None:
        write_frame(self.reply_w, self.hello())
        while True:
            job = read_frame(self.cmd_r, limit=1 << 30)
            if job is None:
                return
            try:
                if not isinstance(job, dict):
                    raise TypeError(f"a job must be a mapping, got {type(job).__name__}")
                reply = self.run(job)
            except Exception:  # noqa: BLE001 - the parent gets the zygote's own failure as an error
                reply = {"status": "error", "reason": "sandbox failure: " + traceback.format_exc()[-1500:]}
            write_frame(self.reply_w, reply)

    def hello(self) -> dict:
        """What the parent checks before trusting this sandbox: pid, namespaces, the uid switch."""
        info: dict = {"pid": os.getpid(), "uid": os.getuid()}
        try:
            info["netns"] = os.readlink("/proc/self/ns/net")
        except OSError:
            info["netns"] = None
        uid = self.cfg.get("model_uid")
        if uid is not None:
            info["uid_switch"] = self._self_test(uid, self.cfg.get("model_gid"))
        return info

    @staticmethod
    def _self_test(uid: int, gid: int | None) -> str:
        """``ok`` when a child can switch to ``uid`` and still import from the standard library."""
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(r)
            try:
                _drop_privileges(uid, gid)
                sys.modules.pop("colorsys", None)
                __import__("colorsys")
                msg = "ok"
            except BaseException as exc:  # noqa: BLE001 - reported to the parent
                msg = f"{type(exc).__name__}: {exc}"
            os.write(w, msg.encode("utf-8", "replace")[:1000])
            os._exit(0)
        os.close(w)
        with os.fdopen(r, "rb") as fh:
            answer = fh.read().decode("utf-8", "replace")
        os.waitpid(pid, 0)
        return answer or "the test process died"

    def run(self, job: dict) -> dict:
        start = time.monotonic()
        limits = job["limits"]
        workdir = tempfile.mkdtemp(prefix="sample-", dir=self.cfg["tmp"])
        if self.cfg.get("model_uid") is not None:
            os.chown(workdir, self.cfg["model_uid"], self.cfg["model_gid"])
        os.chmod(workdir, 0o700)
        req_r, req_w = os.pipe()
        resp_r, resp_w = os.pipe()
        out_r, out_w = os.pipe()
        res_r, res_w = os.pipe()
        model_pid = os.fork()
        if model_pid == 0:
            candidate_main(job, req_r, resp_w, out_w, workdir, self.cfg)
        # Drawn after the candidate was forked: its process never holds this value.
        nonce = os.urandom(16).hex()
        tests_pid = os.fork()
        if tests_pid == 0:
            os.close(out_r)
            tests_main(job, req_w, resp_r, res_w, nonce, self.cfg)
        for fd in (req_r, req_w, resp_r, resp_w, out_w, res_w):
            os.close(fd)
        deadline = start + float(limits["timeout_s"])
        cap = int(limits["max_output_bytes"])
        captured = bytearray()
        total = 0
        result = bytearray()
        timed_out = False
        open_fds = {out_r, res_r}
        while res_r in open_fds:
            left = deadline - time.monotonic()
            if left <= 0:
                timed_out = True
                break
            ready, _, _ = select.select(list(open_fds), [], [], left)
            for fd in ready:
                chunk = os.read(fd, 1 << 16)
                if not chunk:
                    open_fds.discard(fd)
                elif fd == out_r:
                    total += len(chunk)
                    if len(captured) < cap:
                        captured += chunk[: cap - len(captured)]
                elif len(result) < MAX_FRAME:
                    result += chunk
        statuses = self.kill_all(model_pid, tests_pid)
        total, captured = self._drain(out_r, total, captured, cap)
        os.close(out_r)
        os.close(res_r)
        shutil.rmtree(workdir, ignore_errors=True)
        reply = self._verdict(result, nonce, timed_out, limits, statuses.get(model_pid))
        reply.update({"output": captured.decode("utf-8", "replace"), "output_bytes": total,
                      "duration_s": time.monotonic() - start})
        return reply

    @staticmethod
    def _drain(fd: int, total: int, captured: bytearray, cap: int) -> tuple[int, bytearray]:
        os.set_blocking(fd, False)
        while True:
            try:
                chunk = os.read(fd, 1 << 16)
            except (BlockingIOError, OSError):
                break
            if not chunk:
                break
            total += len(chunk)
            if len(captured) < cap:
                captured += chunk[: cap - len(captured)]
        return total, captured

    def _verdict(self, raw: bytearray, nonce: str, timed_out: bool, limits: dict,
                 model_status: int | None) -> dict:
        died = _describe_status(model_status)
        if timed_out:
            return {"status": "timeout", "reason": f"timed out after {limits['timeout_s']:g} s (wall clock)"}
        msg = None
        if len(raw) >= 4 and struct.unpack(">I", bytes(raw[:4]))[0] == len(raw) - 4:
            try:
                msg = json.loads(bytes(raw[4:]).decode("ascii"))
            except (ValueError, UnicodeDecodeError):
                msg = None
        if type(msg) is not dict:
            why = "the tests did not complete" + (f"; candidate {died}" if died else "")
            return {"status": "failed", "reason": why}
        if "crash" in msg:
            return {"status": "error", "reason": "the test process failed: " + str(msg["crash"])[-800:]}
        if msg.get("nonce") != nonce or msg.get("status") not in ("passed", "failed", "error"):
            return {"status": "failed", "reason": "the tests did not complete (no valid completion signal)"}
        reason = str(msg.get("reason") or "")
        if msg["status"] == "failed" and died and "exited before answering" in reason:
            reason += f" ({died})"
        return {"status": msg["status"], "reason": reason}

    def kill_all(self, model_pid: int, tests_pid: int) -> dict[int, int]:
        """Kill everything the sample started and reap it; the exit statuses of the two processes."""
        statuses: dict[int, int] = {}
        if self.pid1:
            # pid 1 of its own pid namespace: kill(-1) reaches every other process in it, setsid or not.
            try:
                os.kill(-1, signal.SIGKILL)
            except ProcessLookupError:
                pass
            while True:
                try:
                    pid, status = os.waitpid(-1, 0)
                except ChildProcessError:
                    break
                statuses[pid] = status
            return statuses
        for _ in range(200):
            victims = _descendants(os.getpid())
            for pid in (model_pid, tests_pid):
                if pid in statuses:
                    continue
                for kill in (os.killpg, os.kill):
                    try:
                        kill(pid, signal.SIGKILL)
                    except (ProcessLookupError, PermissionError):
                        pass
            for pid in victims:
                try:
                    os.kill(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
            for uid, gid in ((self.cfg.get("model_uid"), self.cfg.get("model_gid")),
                             (self.cfg.get("tests_uid"), self.cfg.get("tests_gid"))):
                if uid is not None:
                    _kill_uid(uid, gid)
            while True:
                try:
                    pid, status = os.waitpid(-1, 0 if victims else os.WNOHANG)
                except ChildProcessError:
                    break
                if pid == 0:
                    break
                statuses[pid] = status
            if not victims and model_pid in statuses and tests_pid in statuses:
                break
        return statuses


def _descendants(root: int) -> list[int]:
    """Every process below ``root`` (orphans come back to us: the zygote is a child subreaper)."""
    children: dict[int, list[int]] = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return []
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                stat = fh.read()
        except OSError:
            continue
        fields = stat[stat.rfind(b")") + 2:].split()
        if len(fields) > 1:
            children.setdefault(int(fields[1]), []).append(int(entry))
    out, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def _kill_uid(uid: int, gid: int | None) -> None:
    """kill(-1) as the sample's uid: every process of that uid, wherever it went."""
    pid = os.fork()
    if pid == 0:
        try:
            _drop_privileges(uid, gid)
            os.kill(-1, signal.SIGKILL)
        except BaseException:  # noqa: BLE001,S110
            pass
        os._exit(0)
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass


def _describe_status(status: int | None) -> str:
    if status is None:
        return ""
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        if sig == signal.SIGKILL:
            return ""
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = str(sig)
        extra = {"SIGXCPU": " (CPU time limit)", "SIGSEGV": " (crashed)", "SIGXFSZ": " (file size limit)"}
        return f"killed by {name}{extra.get(name, '')}"
    if os.WIFEXITED(status):
        return f"exited with code {os.WEXITSTATUS(status)}"
    return ""


PRELOAD = ("typing", "math", "re", "collections", "itertools", "functools", "copy", "string", "hashlib",
           "heapq", "bisect", "random", "fractions", "decimal", "statistics", "operator", "fcntl")
"""Modules imported once by the zygote, so that samples (forked from it) do not each import them."""


def main() -> None:
    import gc

    for name in PRELOAD:
        try:
            __import__(name)
        except ImportError:
            pass
    # Objects that exist now are never collected: forked samples do not copy their pages to scan them.
    gc.freeze()
    cfg = json.loads(sys.argv[1])
    cmd_r = os.dup(0)
    reply_w = os.dup(1)
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    _prctl(PR_SET_DUMPABLE, 0)
    if not cfg["pid1"]:
        _prctl(PR_SET_CHILD_SUBREAPER, 1)
        _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    Zygote(cfg, cmd_r, reply_w).serve()


if __name__ == "__main__":
    main()
