"""The sandbox: hostile completions, each a failed sample with a reason, none harming the run or the machine."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import pytest
from execution_helpers import require, start_sandbox
from hypothesis import given
from hypothesis import strategies as st

from pytest_llmeval.errors import SandboxUnavailable
from pytest_llmeval.execution import _child
from pytest_llmeval.execution.sandbox import (
    ALLOW_ENV,
    LAUNCHER_ENV,
    AssertTests,
    HumanEvalTests,
    Job,
    Limits,
    SampleResult,
    Sandbox,
    _launch,
    _Zygote,
)

ADD_TESTS = HumanEvalTests(
    test="def check(candidate):\n    assert candidate(1, 2) == 3\n    assert candidate(-1, 1) == 0\n",
    entry_point="add", prompt="def add(a, b):\n    '''a + b'''\n")
RIGHT = "def add(a, b):\n    return a + b\n"
WRONG = "def add(a, b):\n    return a - b\n"


def run(sandbox: Sandbox, program: str, tests: HumanEvalTests | AssertTests = ADD_TESTS) -> SampleResult:
    return sandbox.run_one(Job(program, tests))


def failed(result: SampleResult, *fragments: str) -> None:
    """The sample failed (not an error of the harness), with a reason naming each fragment."""
    assert result.status in ("failed", "timeout"), result
    assert result.reason, result
    for frag in fragments:
        assert frag in result.reason, result


def sandbox_still_works(sandbox: Sandbox) -> None:
    result = run(sandbox, RIGHT)
    assert result.status == "passed", result


# ----------------------------------------------------------------------------- ordinary samples


def test_right_and_wrong(sandbox: Sandbox) -> None:
    good = run(sandbox, RIGHT)
    assert (good.status, good.reason, good.output) == ("passed", "", "")
    result = run(sandbox, WRONG)
    failed(result, "AssertionError", "at test line 2: assert candidate(1, 2) == 3", "add(1, 2) returned -1")


def test_exception_syntax_error_and_missing_function(sandbox: Sandbox) -> None:
    failed(run(sandbox, "def add(a, b):\n    return 1 / 0\n"), "ZeroDivisionError", "line 2 of the completion")
    failed(run(sandbox, "def add(a, b) return\n"), "failed to load", "SyntaxError")
    failed(run(sandbox, "def plus(a, b):\n    return a + b\n", AssertTests("assert add(1, 2) == 3")),
           "defines no function 'add'")


def test_mbpp_style_asserts_and_setup(sandbox: Sandbox) -> None:
    tests = AssertTests(tests="assert math.isclose(area(2), 4.0)\nassert area(3) == SIDE * 3", setup="SIDE = 3")
    assert run(sandbox, "def area(x):\n    return float(x * x)\n" + "\nSIDE = 3\n", tests).passed
    failed(run(sandbox, "def area(x):\n    return x\n", tests), "at test line 1")


def test_harness_errors_are_not_failures(sandbox: Sandbox) -> None:
    bad = HumanEvalTests(test="def check(candidate) oops", entry_point="add")
    assert run(sandbox, RIGHT, bad).status == "error"
    no_check = HumanEvalTests(test="x = 1\n", entry_point="add")
    assert run(sandbox, RIGHT, no_check).status == "error"


def test_tests_that_never_call_the_candidate_do_not_pass(sandbox: Sandbox) -> None:
    failed(run(sandbox, RIGHT, HumanEvalTests(test="def check(candidate):\n    pass\n", entry_point="add")),
           "never called")


def test_prompt_helpers_come_from_the_prompt_not_the_completion(sandbox: Sandbox) -> None:
    tests = HumanEvalTests(test="def check(candidate):\n    assert candidate(2) == double(2) + 1\n",
                           entry_point="f", prompt="def double(x):\n    return 2 * x\n\n\ndef f(x):\n    '''doc'''\n")
    assert run(sandbox, "def double(x):\n    return 2 * x\n\n\ndef f(x):\n    return double(x) + 1\n",
               tests).passed
    # The completion redefines the helper: the tests still use the prompt's.
    cheat = "def double(x):\n    return 0\n\n\ndef f(x):\n    return 1\n"
    failed(run(sandbox, cheat, tests), "f(2) returned 1")


def test_runs_samples_in_parallel(sandbox: Sandbox) -> None:
    jobs = [Job("import time\ndef add(a, b):\n    time.sleep(0.5)\n    return a + b\n", ADD_TESTS)] * 4
    start = time.monotonic()
    results = sandbox.run(jobs)
    assert [r.status for r in results] == ["passed"] * 4
    assert sandbox.n_workers == 2
    assert time.monotonic() - start < 4 * 1.0 * 0.9  # 4 samples of >= 1 s each, on two workers


# ----------------------------------------------------------------------------- hostile completions


def test_infinite_loop_times_out(sandbox: Sandbox) -> None:
    result = run(sandbox, "def add(a, b):\n    while True:\n        pass\n")
    assert result.status == "timeout"
    assert "timed out after 3 s" in result.reason
    sandbox_still_works(sandbox)


def test_fork_bomb(sandbox: Sandbox) -> None:
    start = time.monotonic()
    result = run(sandbox, "import os\nwhile True:\n    os.fork()\n")
    failed(result)
    assert time.monotonic() - start < 30
    sandbox_still_works(sandbox)
    if os.geteuid() == 0:
        uid = sandbox._all[0].launch.cfg["model_uid"]
        left = [p for p in os.listdir("/proc") if p.isdigit() and _uid_of(p) == uid]
        assert left == []


def _uid_of(pid: str) -> int | None:
    try:
        return os.stat(f"/proc/{pid}").st_uid
    except OSError:
        return None


def test_ten_gigabyte_allocation(sandbox: Sandbox) -> None:
    failed(run(sandbox, "x = bytearray(10 * 1024 ** 3)\n" + RIGHT), "MemoryError")
    sandbox_still_works(sandbox)


def test_one_gigabyte_file(sandbox: Sandbox) -> None:
    program = ("chunk = b'0' * (1 << 20)\nwith open('big.bin', 'wb') as fh:\n    for _ in range(1024):\n"
               "        fh.write(chunk)\n" + RIGHT)
    failed(run(sandbox, program), "File too large")
    sandbox_still_works(sandbox)


def test_api_key_is_not_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-do-not-leak-0123456789")
    sb = start_sandbox(Limits(timeout_s=5.0), workers=1)
    try:
        program = (
            "import os, glob\n"
            "print('env:', os.environ.get('OPENAI_API_KEY'))\n"
            "print(sorted(os.environ))\n"
            "for path in glob.glob('/proc/*/environ'):\n"
            "    try:\n"
            "        print(path, open(path, 'rb').read())\n"
            "    except OSError as exc:\n"
            "        print(path, exc)\n"
            "def add(a, b):\n"
            "    return os.environ['OPENAI_API_KEY']\n")
        result = run(sb, program)
    finally:
        sb.close()
    failed(result, "KeyError", "OPENAI_API_KEY")
    assert "env: None" in result.output
    assert "['HOME', 'LANG', 'LC_ALL', 'PATH', 'TMPDIR']" in result.output
    assert "sk-test-do-not-leak" not in result.output


def test_no_network_to_the_host(sandbox: Sandbox) -> None:
    if not sandbox.info.layer("network").active:
        require("the network layer", sandbox.info.layer("network").detail)
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.setblocking(False)
    port = server.getsockname()[1]
    try:
        program = (f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=1).sendall(b'hi')\n"
                   + RIGHT)
        result = run(sandbox, program)
        with pytest.raises(BlockingIOError):
            server.accept()
    finally:
        server.close()
    failed(result, "ConnectionRefusedError")


def test_cannot_delete_files_outside_its_directory(sandbox: Sandbox, tmp_path: Path) -> None:
    victim = tmp_path / "keep.txt"
    victim.write_text("precious")
    program = (f"import os, shutil\nos.remove({str(victim)!r})\n" + RIGHT)
    failed(run(sandbox, program))
    program = (f"import shutil\nshutil.rmtree({str(tmp_path)!r})\n" + RIGHT)
    failed(run(sandbox, program))
    program = "import os\nos.remove('/etc/hostname')\n" + RIGHT
    failed(run(sandbox, program))
    assert victim.read_text() == "precious"
    assert Path("/etc/hostname").exists() or not Path("/etc").exists()


def test_each_sample_gets_a_fresh_directory_removed_afterwards() -> None:
    sb = start_sandbox(Limits(timeout_s=5.0), workers=1)
    program = ("import os, sys\n"
               "print('cwd', os.getcwd(), os.listdir('.'), 'siblings', os.listdir(os.path.dirname(os.getcwd())))\n"
               "print('stdin', repr(sys.stdin.read()))\n"
               "open('left-behind.txt', 'w').write('x')\n" + RIGHT)
    try:
        first, second = run(sb, program), run(sb, program)
    finally:
        sb.close()
    assert first.passed and second.passed
    cwd1 = first.output.split()[1]
    cwd2 = second.output.split()[1]
    assert cwd1 != cwd2
    assert f"cwd {cwd2} [] siblings ['{os.path.basename(cwd2)}']" in second.output
    assert "stdin ''" in second.output


def test_kill_the_parent(sandbox: Sandbox) -> None:
    program = "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\nos.kill(1, signal.SIGKILL)\n" + WRONG
    failed(run(sandbox, program))
    sandbox_still_works(sandbox)
    assert all(z.alive for z in sandbox._all)


def test_runs_as_an_unprivileged_uid_when_root(sandbox: Sandbox) -> None:
    program = ("import os\n"
               "caps = [line.split()[1] for line in open('/proc/self/status') if line.startswith('CapEff')][0]\n"
               "def add(a, b):\n"
               "    return a + b if os.getuid() != 0 and os.geteuid() != 0 and int(caps, 16) == 0 else 0\n")
    assert run(sandbox, program).passed
    if os.geteuid() == 0:
        assert sandbox.info.layer("unprivileged_uid").active


@pytest.mark.parametrize("exit_call", ["import sys\nsys.exit(0)\n", "import os\nos._exit(0)\n",
                                       "raise SystemExit(0)\n"])
def test_exit_before_the_tests_is_not_a_pass(sandbox: Sandbox, exit_call: str) -> None:
    failed(run(sandbox, exit_call + RIGHT), "load")
    failed(run(sandbox, "def add(a, b):\n    " + exit_call.replace("\n", "\n    ")), "add")


def test_exit_inside_the_call_is_not_a_pass(sandbox: Sandbox) -> None:
    failed(run(sandbox, "import os\ndef add(a, b):\n    os._exit(0)\n"), "exited before answering")


def test_forged_completion_signal_is_not_a_pass(sandbox: Sandbox) -> None:
    # Write a plausible 'passed' message to every descriptor, then leave before the tests run.
    program = (
        "import json, os, struct\n"
        "msg = json.dumps({'nonce': '0' * 32, 'status': 'passed', 'reason': ''}).encode()\n"
        "for fd in range(3, 64):\n"
        "    try:\n"
        "        os.write(fd, struct.pack('>I', len(msg)) + msg)\n"
        "    except OSError:\n"
        "        pass\n"
        "os._exit(0)\n")
    failed(run(sandbox, program))


def test_always_equal_object_cannot_pass(sandbox: Sandbox) -> None:
    program = ("class Yes:\n    def __eq__(self, other):\n        return True\n"
               "def add(a, b):\n    return Yes()\n")
    failed(run(sandbox, program), "not a plain built-in value")
    program = ("class Int(int):\n    def __eq__(self, other):\n        return True\n"
               "def add(a, b):\n    return Int(0)\n")
    failed(run(sandbox, program), "Int object, not a plain built-in value")
    program = ("class Yes:\n    def __eq__(self, other):\n        return True\n"
               "def add(a, b):\n    return [1, (2, {'k': Yes()})]\n")
    failed(run(sandbox, program), "not a plain built-in value")


def test_replacing_assertion_error_does_not_help(sandbox: Sandbox) -> None:
    program = ("import builtins\nclass Quiet(Exception):\n    pass\n"
               "builtins.AssertionError = Quiet\nbuiltins.Exception = Quiet\n" + WRONG)
    failed(run(sandbox, program), "AssertionError")


def test_two_hundred_megabytes_of_stdout() -> None:
    sb = start_sandbox(Limits(timeout_s=30.0, max_output_bytes=4096), workers=1)
    try:
        noisy = "import sys\nfor _ in range(200):\n    sys.stdout.write('x' * (1 << 20))\n"
        result = run(sb, noisy + WRONG)
        right = run(sb, noisy + RIGHT)
    finally:
        sb.close()
    failed(result, "AssertionError")
    assert result.output_bytes >= 200 * (1 << 20)
    assert len(result.output) == 4096
    assert right.passed


# ----------------------------------------------------------------------------- values crossing the boundary


plain = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text() | st.binary(),
    lambda inner: st.lists(inner, max_size=4) | st.tuples(inner, inner)
    | st.dictionaries(st.text(max_size=5) | st.integers(), inner, max_size=4)
    | st.frozensets(st.integers(), max_size=4) | st.sets(st.text(max_size=3), max_size=4),
    max_leaves=20)


@given(plain)
def test_plain_values_round_trip(value: object) -> None:
    back = _child.decode(_child.encode(value))
    assert back == value
    assert type(back) is type(value)


def test_encode_refuses_subclasses_and_objects() -> None:
    class Str(str):
        pass

    for value in (Str("a"), object(), [1, {2: object()}], print, range(3)):
        with pytest.raises(_child.NotPlain):
            _child.encode(value)
    deep: list = []
    for _ in range(_child.MAX_DEPTH + 5):
        deep = [deep]
    with pytest.raises(_child.NotPlain, match="nested deeper"):
        _child.encode(deep)


@pytest.mark.parametrize("tree", [{"x": []}, {"l": 1}, {"l": [], "t": []}, {"d": [[1]]}, {"s": [{"l": []}]},
                                  {"b": "not base64!"}, [1, 2], {"c": ["a", 1]}])
def test_decode_refuses_malformed_trees(tree: object) -> None:
    with pytest.raises((ValueError, TypeError)):
        _child.decode(tree)


# ----------------------------------------------------------------------------- layers and fallbacks


def test_layers_are_reported(sandbox: Sandbox) -> None:
    info = sandbox.info
    assert [x.name for x in info.layers][:6] == ["process", "rlimits", "wall_timeout", "temp_dir",
                                                 "scrubbed_env", "unprivileged_uid"]
    assert info.missing(required=True) == []
    assert info.describe().startswith(f"{info.launcher}: process, rlimits")
    if info.launcher == "bwrap":
        assert info.layer("network").active and info.layer("pid_namespace").active
        assert info.layer("filesystem").active


def test_refuses_without_the_network_layer_unless_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ALLOW_ENV, raising=False)
    with pytest.raises(SandboxUnavailable) as err:
        Sandbox(Limits(), workers=1, launcher="none")
    assert err.value.layer in ("network", "process")
    assert "network" in str(err.value) or "unprivileged_uid" in str(err.value)
    if err.value.layer == "network":
        assert f"{ALLOW_ENV}=1" in str(err.value) and "--llmeval-allow-unsandboxed" in str(err.value)


def test_unknown_launcher_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from pytest_llmeval.errors import ConfigError

    monkeypatch.setenv(LAUNCHER_ENV, "docker")
    with pytest.raises(ConfigError, match="use bwrap, unshare or none"):
        Sandbox(Limits(), workers=1)


def _bare_zygote(launcher: str) -> _Zygote:
    """A zygote of the given launcher without the uid switch (the code under test is harmless)."""
    try:
        return _Zygote(_launch(launcher, None, Limits(timeout_s=3.0), False), 0)
    except (SandboxUnavailable, OSError) as exc:
        require(f"the '{launcher}' launcher", str(exc))
        raise


ESCAPE = ("import os, time\n"
          "if os.fork() == 0:\n"
          "    os.setsid()\n"
          "    if os.fork() == 0:\n"
          "        print('escaped', os.getpid(), flush=True)\n"
          "        time.sleep(600)\n"
          "    os._exit(0)\n"
          "time.sleep(0.3)\n"
          "def add(a, b):\n"
          "    while True:\n"
          "        pass\n")


@pytest.mark.parametrize("launcher", ["none", "unshare"])
def test_processes_that_leave_the_session_are_killed(launcher: str) -> None:
    zygote = _bare_zygote(launcher)
    try:
        result = zygote.run(Job(ESCAPE, ADD_TESTS), Limits(timeout_s=2.0))
        after = zygote.run(Job(RIGHT, ADD_TESTS), Limits(timeout_s=2.0))
    finally:
        zygote.close()
    assert result.status == "timeout"
    assert after.passed
    pid = int(result.output.split("escaped")[1].split()[0])
    if launcher == "none":  # the same pid namespace as this process: the pid must be gone
        status = Path(f"/proc/{pid}/status")
        assert not status.exists() or "State:\tZ" in status.read_text()
    else:
        assert zygote.hello["pid"] == 1


def test_unshare_launcher_isolates_the_network() -> None:
    zygote = _bare_zygote("unshare")
    try:
        assert zygote.hello["pid"] == 1
        assert zygote.hello["netns"] != os.readlink("/proc/self/ns/net")
    finally:
        zygote.close()


NON_ROOT_SCRIPT = """
import sys, types
root = sys.argv[1]
for name, path in (("pytest_llmeval", root + "/pytest_llmeval"),
                   ("pytest_llmeval.execution", root + "/pytest_llmeval/execution")):
    module = types.ModuleType(name)
    module.__path__ = [path]
    sys.modules[name] = module  # the sandbox needs nothing but the standard library
from pytest_llmeval.execution.sandbox import HumanEvalTests, Job, Limits, Sandbox
if sys.argv[2] == "probe":
    raise SystemExit(0)
tests = HumanEvalTests(test="def check(candidate):\\n    assert candidate(1, 2) == 3\\n", entry_point="add")
with Sandbox(Limits(timeout_s=3), workers=1) as sb:
    print("layers", sb.info.describe())
    for program in ["def add(a, b):\\n    return a + b\\n", "while True: pass\\n",
                    "import socket\\nsocket.create_connection(('1.1.1.1', 80), timeout=1)\\n",
                    "import os\\nos.remove('/etc/hostname')\\n"]:
        print("result", sb.run_one(Job(program, tests)).status)
"""


def test_as_a_non_root_user() -> None:
    """bubblewrap in a user namespace, as an ordinary user: every layer, the same outcomes."""
    import shutil
    import tempfile

    runuser, python = shutil.which("runuser"), "/usr/bin/python3"
    if os.geteuid() != 0 or runuser is None or not os.access(python, os.X_OK):
        pytest.skip("needs root, runuser and /usr/bin/python3 to run the sandbox as 'nobody'")
    with tempfile.TemporaryDirectory() as where:
        os.chmod(where, 0o755)
        script = Path(where) / "nonroot.py"
        script.write_text(NON_ROOT_SCRIPT)
        script.chmod(0o644)
        _run_as_nobody([runuser, "-u", "nobody", "--", "env", "-i", "PATH=/usr/bin:/bin", python, str(script),
                        str(Path(__file__).parents[2])])


def _run_as_nobody(argv: list[str]) -> None:
    import subprocess

    probe = subprocess.run(argv + ["probe"], capture_output=True, text=True, timeout=60)
    if probe.returncode != 0:
        pytest.skip(f"'nobody' cannot read this checkout or that Python: {probe.stderr.strip()[-300:]}")
    done = subprocess.run(argv + ["run"], capture_output=True, text=True, timeout=120)
    if "no sandbox with every required layer" in done.stderr:
        require("bubblewrap for ordinary users (unprivileged user namespaces)", done.stderr.strip()[-300:])
    assert done.returncode == 0, done.stderr
    assert "layers bwrap: process, rlimits, wall_timeout, temp_dir, scrubbed_env, unprivileged_uid, network, " \
           "pid_namespace, filesystem" in done.stdout
    assert [line.split()[1] for line in done.stdout.splitlines() if line.startswith("result")] == \
        ["passed", "timeout", "failed", "failed"]


def test_a_dead_zygote_is_replaced_and_the_sample_still_runs() -> None:
    import signal

    sb = start_sandbox(Limits(timeout_s=5.0), workers=1)
    try:
        assert run(sb, RIGHT).passed
        [zygote] = sb._all
        os.killpg(zygote.proc.pid, signal.SIGKILL)
        zygote.proc.wait(timeout=10)
        assert run(sb, RIGHT).passed
        assert sb._all and sb._all[0] is not zygote
    finally:
        sb.close()


def test_control_characters_from_the_model_are_escaped(sandbox: Sandbox) -> None:
    program = ("print('\\x1b[2J\\x1b[31mred\\rover\\tok')\n"
               "def add(a, b):\n    raise ValueError('\\x1b]0;title\\x07 boom\\nnext')\n")
    result = run(sandbox, program)
    failed(result, "ValueError")
    assert "\x1b" not in result.reason and "\\x1b]0;title\\x07 boom\\nnext" in result.reason
    assert "\x1b" not in result.output and "\\x1b[31mred\\rover\tok\n" in result.output
