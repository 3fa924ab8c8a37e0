import dis
import errno
import os
import socket
import subprocess
import textwrap
import time
import types

import pytest

import keras_textdiff
from keras_textdiff.evaluation import sandbox

ADD_TESTS = ["assert add(1, 2) == 3", "assert add(2, 5) == 7"]
EARLY_EXIT = "an early exit does not pass"
TEST_FAILED = "[sandbox] test 1 of 2 failed"
NO_LANDLOCK = (
    "Landlock is unavailable on this kernel (needs Linux >= 5.13 with it enabled): "
    "only the harness's Python-level check refuses reads outside the directory"
)


def alive(pid):
    """True if `pid` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state not in ("Z", "X")


def last_line(result):
    return result.stderr_tail.strip().splitlines()[-1] if result.stderr_tail.strip() else ""


def test_correct_program_passes_and_wrong_one_fails():
    good = sandbox.check_correctness(
        "def add(a, b):\n    return a + b", ["assert add(1, 2) == 3", "assert add(0, 0) == 0"],
        setup_code="import math",
    )
    assert good.passed and good.status == "passed" and good.returncode == 0
    bad = sandbox.check_correctness("def add(a, b):\n    return a - b", ["assert add(1, 2) == 3"])
    assert not bad.passed and bad.status == "failed"
    assert "AssertionError" in bad.stderr_tail and 'program.py", line 3' in bad.stderr_tail
    assert "[sandbox] test 1 of 1 failed" in bad.stderr_tail
    syntax = sandbox.run_program("def f(:\n  pass")
    assert syntax.status == "failed" and "SyntaxError" in syntax.stderr_tail


def test_every_test_must_run_and_hold():
    # Right on the first test only: the second one fails the program.
    half = sandbox.check_correctness("def add(a, b):\n    return 3", ADD_TESTS)
    assert half.status == "failed" and "[sandbox] test 2 of 2 failed" in half.stderr_tail
    assert 'program.py", line 4' in half.stderr_tail
    # A test that does not compile is the sandbox's error, not the program's failure.
    broken = sandbox.check_correctness("def add(a, b):\n    return a + b", ["assert add(1, 2) =="])
    assert broken.status == "error" and "[sandbox] test 1 does not compile" in broken.stderr_tail
    # A program without tests passes only when it runs to its end.
    assert sandbox.run_program("x = 1").passed
    assert sandbox.run_program("import sys\nsys.exit(0)").status == "failed"


def test_humaneval_helper():
    prompt = 'def inc(x):\n    """Add one."""\n'
    test = textwrap.dedent(
        """
        METADATA = {"author": "x"}

        def check(candidate):
            assert candidate(1) == 2
            assert candidate(-1) == 0
            assert abs(candidate(0.5) - 1.5) < 1e-6
        """
    )
    assert sandbox.humaneval_program(prompt, "    return x + 1\n", test, "inc").endswith("check(inc)\n")
    assert sandbox.check_humaneval(prompt, "    return x + 1\n", test, "inc").passed
    wrong = sandbox.check_humaneval(prompt, "    return x + 2\n", test, "inc")
    assert wrong.status == "failed" and "[sandbox] test 1 of 1 failed" in wrong.stderr_tail


# Programs written to pass MBPP-style tests for `add` without solving them.
# Each would pass a sandbox that trusts the exit status, the output, `==` or
# the builtins; `reason` is what this sandbox reports instead.
ADVERSARIAL = {
    "sys.exit(0) before the tests": ("import sys\nsys.exit(0)", EARLY_EXIT),
    "raise SystemExit": ("raise SystemExit", EARLY_EXIT),
    "os._exit(0) before the tests": ("import os\nos._exit(0)", EARLY_EXIT),
    "sys.exit(0) during a test": ("def add(a, b):\n    import sys\n    sys.exit(0)", TEST_FAILED),
    "os._exit(0) during a test": ("def add(a, b):\n    import os\n    os._exit(0)", EARLY_EXIT),
    "a fake success marker": (
        "print('All tests passed', flush=True)\nprint('passed 2', flush=True)\n"
        "import os\nos._exit(0)",
        EARLY_EXIT,
    ),
    "forged result-pipe lines": (
        "import os\nfor fd in range(3, 256):\n    try:\n"
        "        os.write(fd, b'passed 2\\n')\n    except OSError:\n        pass\n"
        "def add(a, b):\n    return a + b",
        "[sandbox] the program wrote to the sandbox's result channel",
    ),
    "__eq__ always True": (
        "class Equal:\n    def __eq__(self, other):\n        return True\n"
        "    def __ne__(self, other):\n        return False\n"
        "def add(a, b):\n    return Equal()",
        TEST_FAILED,
    ),
    "an int subclass equal to everything": (
        "class Equal(int):\n    def __eq__(self, other):\n        return True\n"
        "    __hash__ = int.__hash__\ndef add(a, b):\n    return Equal(0)",
        TEST_FAILED,
    ),
    "rebinding AssertionError": (
        "import builtins\nclass Never(Exception):\n    pass\n"
        "builtins.AssertionError = AssertionError = Never\ndef add(a, b):\n    return 0",
        TEST_FAILED,
    ),
    "patching builtins and the harness": (
        "import builtins, os, sys, __main__\n"
        "builtins.exec = builtins.compile = lambda *args, **kwargs: None\n"
        "builtins.BaseException = builtins.MemoryError = type('X', (Exception,), {})\n"
        "os.write = lambda *args: 0\nos._exit = sys.exit = lambda code=0: None\n"
        "os.setsid.__globals__.clear()  # The harness's module globals.\n"
        "def add(a, b):\n    return 0\n",
        TEST_FAILED,
    ),
    "clearing its own module and sys.modules": (
        "import sys, __main__\ndef add(a, b):\n    return 0\n"
        "sys.modules.clear()\nvars(__main__).clear()",
        TEST_FAILED,
    ),
    "walking frames to the harness": (
        "import sys\ndef add(a, b):\n    frame = sys._getframe(1)\n"
        "    while frame.f_back:\n        frame = frame.f_back\n"
        "    print(frame.f_locals)\n    return 0",
        "ValueError: sys._getframe is disabled in the sandbox",
    ),
    "a traceback's frames": (
        "def add(a, b):\n    try:\n        raise ValueError\n    except ValueError as error:\n"
        "        print(error.__traceback__.tb_frame.f_back.f_locals)\n    return 0",
        "PermissionError: [Errno 1] tb_frame is hidden in the sandbox",
    ),
    "a generator's frames": (
        "gen = (x for x in [1])\nframe = gen.gi_frame\ndef add(a, b):\n    return 0",
        "PermissionError: [Errno 1] gi_frame is hidden in the sandbox",
    ),
    "gc scan for the nonce": (
        "import gc\nfound = [o for o in gc.get_objects() if isinstance(o, dict)]\n"
        "def add(a, b):\n    return 0",
        "gc.get_objects is disabled in the sandbox",
    ),
    "a trace function skipping asserts": (
        "import sys\nsys.settrace(lambda *args: None)\ndef add(a, b):\n    return 0",
        "sys.settrace is disabled in the sandbox",
    ),
    "a signal handler's frame": (
        "import signal\nsignal.signal(signal.SIGALRM, lambda s, f: f.f_back.f_locals)\n"
        "signal.setitimer(signal.ITIMER_REAL, 0.01)\ndef add(a, b):\n    return 0",
        "signal.signal is disabled in the sandbox",
    ),
    "a fresh copy of _signal": (
        "import importlib.util\n"
        "m = importlib.util.module_from_spec(importlib.util.find_spec('_signal'))\n"
        "def add(a, b):\n    return 0",
        "loading a fresh copy of _signal is disabled in the sandbox",
    ),
    "the harness's keyword defaults": (
        "import _imp\nprint(_imp.create_builtin.__kwdefaults__)\ndef add(a, b):\n    return 0",
        "__kwdefaults__ of the sandbox's functions is hidden",
    ),
    "hand-made bytecode": (
        "def add(a, b):\n    return 0\ncode = add.__code__.replace(co_code=add.__code__.co_code)",
        "code.__new__ is disabled in the sandbox",
    ),
    "re-importing ctypes": (
        "import sys\nfor name in ('ctypes', '_ctypes'):\n    sys.modules.pop(name, None)\n"
        "import ctypes\ndef add(a, b):\n    return 0",
        "importing ctypes is disabled in the sandbox",
    ),
    "deleting program.py": (
        "import os\nos.remove('program.py')\ndef add(a, b):\n    return 0", TEST_FAILED
    ),
    "swallowing the tests in a string": ("def add(a, b):\n    return 0\nx = '''", "SyntaxError"),
    "swallowing the tests in an if False": (
        "def add(a, b):\n    return 0\nif False:", "IndentationError"
    ),
}


@pytest.mark.parametrize("name", list(ADVERSARIAL))
def test_adversarial_program_fails(name):
    code, reason = ADVERSARIAL[name]
    result = sandbox.check_correctness(code, ADD_TESTS, timeout=5.0)
    assert not result.passed and result.status == "failed", result
    assert reason in result.stderr_tail, result.stderr_tail


LYING_VALUES = {
    "__sub__ returning 0 for a tolerance check": (
        "class Zero:\n    def __sub__(self, other):\n        return 0.0\n"
        "    __rsub__ = __sub__\n    def __abs__(self):\n        return 0.0\n"
        "def area(r):\n    return Zero()",
        ["assert abs(area(2) - 12.566) < 0.001"],
    ),
    "__contains__ saying yes": (
        "class Everything:\n    def __contains__(self, item):\n        return True\n"
        "def evens(n):\n    return Everything()",
        ["assert 4 in evens(4)"],
    ),
    "__lt__ and __gt__ saying yes": (
        "class Between:\n    __lt__ = __gt__ = __le__ = __ge__ = lambda self, other: True\n"
        "def mid(a, b):\n    return Between()",
        ["assert 1 < mid(1, 3) < 3"],
    ),
    "patched math.isclose and sys.modules": (
        "import math, sys, types\nmath.isclose = lambda *args, **kwargs: True\n"
        "fake = types.ModuleType('math')\nfake.isclose = math.isclose\nsys.modules['math'] = fake\n"
        "def half(x):\n    return 0",
        ["import math\nassert math.isclose(half(3), 1.5)"],
    ),
    "a builtin the tests use, rebound": (
        "import builtins\nbuiltins.len = len = lambda x: 3\ndef items(n):\n    return []",
        ["assert len(items(3)) == 3"],
    ),
}


@pytest.mark.parametrize("name", list(LYING_VALUES))
def test_values_that_lie_fail(name):
    code, tests = LYING_VALUES[name]
    result = sandbox.check_correctness(code, tests, timeout=5.0)
    assert result.status == "failed", result
    assert "[sandbox] test 1 of" in result.stderr_tail, result.stderr_tail


def test_honest_programs_pass_the_checked_comparisons():
    code = textwrap.dedent(
        """
        import collections, dataclasses, enum, fractions, functools, logging, math, typing
        import numpy as np

        Point = collections.namedtuple("Point", "x y")

        @dataclasses.dataclass
        class Box:
            size: int

        class Color(enum.IntEnum):
            RED = 1

        @functools.lru_cache(maxsize=None)
        def fib(n: int) -> int:
            return n if n < 2 else fib(n - 1) + fib(n - 2)

        def area(r):
            return math.pi * r * r

        def counts(s):
            return collections.Counter(s)

        def sort_by(items, key):
            return sorted(items, key=key)

        def sum(values):  # MBPP task 126 asks for a function named `sum`.
            total = 0
            for value in values:
                total += value
            return total

        logging.getLogger("x").warning("logging works")
        """
    )
    tests = [
        "assert fib(10) == 55 and fib(0) is 0",
        "assert abs(area(2) - 12.566) < 0.001",
        "assert Point(1, 2) == (1, 2) and Box(3) == Box(3)",
        "assert Color.RED == 1 and fractions.Fraction(1, 2) == 0.5",
        "assert counts('aab') == {'a': 2, 'b': 1} and counts('a') + counts('b') == counts('ab')",
        "assert 'ab' in 'xabx' and 3 in [1, 2, 3] and 4 not in {1: 2}",
        "assert 1 < fib(3) <= 2 < 3 and [1, 2] < [1, 3]",
        "assert np.int64(4) == 4 and [np.float64(1.5)] == [1.5] and np.int64(2) * 3 == 6",
        "assert sort_by([3, 1, 2], key=lambda x: -x) == [3, 2, 1]",
        "assert sum([1, 2, 3]) == 6",
        "assert {1, 2} == frozenset([2, 1]) and {}.keys() == set() and None == None",
    ]
    result = sandbox.check_correctness(code, tests, timeout=10.0)
    assert result.passed, result.stderr_tail
    assert "logging works" in result.stderr_tail


def test_harness_code_looks_up_no_global_names():
    # The program can rebind globals and builtins: once it has started, the
    # harness's code must use only locals, closures and keyword defaults.
    module = compile(sandbox._RUNNER, "runner.py", "exec")
    functions = {c.co_name: c for c in module.co_consts if isinstance(c, types.CodeType)}

    def nested(code):
        yield code
        for const in code.co_consts:
            if isinstance(const, types.CodeType):
                yield from nested(const)

    checked = list(nested(functions["_run"]))
    checked += list(nested(functions["_checked_operations"]))[1:]
    checked += [c for c in nested(functions["_install_guards"])
                if c.co_name in ("inside", "refuse", "hook", "deny", "guarded")]
    checked += [c for c in nested(functions["_test_import"]) if c.co_name == "test_import"]
    names = {c.co_name for c in checked}
    assert {"_run", "show", "compare", "canonical", "contains", "chain", "binop", "hook",
            "inside", "deny", "guarded", "test_import"} <= names
    for code in checked:
        lookups = [i.argval for i in dis.get_instructions(code)
                   if i.opname in ("LOAD_GLOBAL", "LOAD_NAME")]
        assert lookups == [], (code.co_name, lookups)


def test_kill_attempts_leave_other_processes_alive():
    victim = subprocess.Popen(["sleep", "30"], start_new_session=True)
    try:
        code = textwrap.dedent(
            f"""
            import os, signal
            for attempt in (lambda: os.kill({victim.pid}, signal.SIGKILL),
                            lambda: os.killpg({victim.pid}, signal.SIGKILL),
                            lambda: signal.pidfd_send_signal(os.pidfd_open({victim.pid}), 9),
                            lambda: os.kill(os.getppid(), 0)):
                try:
                    attempt()
                except PermissionError as error:
                    print("refused:", error, flush=True)
            """
        )
        result = sandbox.run_program(code, timeout=5.0)
        assert result.stdout_tail.count("refused:") == 4, result
        assert "os.kill is disabled in the sandbox" in result.stdout_tail
        time.sleep(0.1)
        assert alive(victim.pid)
        # Without the Python-level guard, the kernel refuses: root's programs
        # run as another uid, and Landlock >= 6 scopes signals.
        if os.geteuid() == 0 or sandbox.landlock_abi() >= 6:
            code = f"import os\nos.kill({victim.pid}, 9)"
            result = sandbox.run_program(code, timeout=5.0, _python_guards=False)
            assert result.status == "failed" and "PermissionError" in result.stderr_tail
            time.sleep(0.1)
            assert alive(victim.pid)
    finally:
        victim.kill()
        victim.wait()


def test_reading_outside_the_directory_is_refused(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("secret")
    repository_file = keras_textdiff.__file__
    code = textwrap.dedent(
        f"""
        import json, os  # The standard library stays readable.
        open("mine.txt", "w").write("ok")
        assert open("mine.txt").read() == "ok"
        for attempt in (lambda: open({str(secret)!r}).read(),
                        lambda: open({repository_file!r}).read(),
                        lambda: os.listdir({os.path.expanduser("~")!r}),
                        lambda: os.listdir({str(tmp_path)!r}),
                        lambda: open("/proc/self/environ").read()):
            try:
                print("read:", attempt(), flush=True)
            except PermissionError as error:
                print("refused:", error, flush=True)
        """
    )
    result = sandbox.run_program(code, timeout=5.0)
    assert result.passed, result.stderr_tail
    assert result.stdout_tail.count("refused:") == 5 and "read:" not in result.stdout_tail
    assert "reading outside the sandbox's directory is disabled" in result.stdout_tail
    if sandbox.landlock_abi() == 0:
        pytest.skip(NO_LANDLOCK)
    # The kernel refuses too, without the Python-level guard.
    kernel = sandbox.run_program(code, timeout=5.0, _python_guards=False)
    assert kernel.passed, kernel.stderr_tail
    assert kernel.stdout_tail.count("refused: [Errno 13] Permission denied") == 5, kernel


def test_temporary_directory_is_removed_and_writes_stay_inside(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    outside = tmp_path / "outside.txt"
    code = textwrap.dedent(
        f"""
        import os, pathlib
        print(os.getcwd())
        pathlib.Path("inside.txt").write_text("ok")
        os.makedirs("sub/dir")
        open("sub/dir/x.txt", "w").write("ok")
        assert sorted(os.listdir(".")) == ["inside.txt", "program.py", "sub"]
        for attempt in (lambda: open({str(outside)!r}, "w"),
                        lambda: pathlib.Path({str(outside)!r}).write_text("x"),
                        lambda: os.open({str(outside)!r}, os.O_CREAT | os.O_WRONLY),
                        lambda: os.remove({str(tmp_path / "keep.txt")!r}),
                        lambda: os.rename("inside.txt", {str(outside)!r})):
            try:
                attempt()
            except PermissionError:
                pass
            else:
                raise SystemExit("wrote outside")
        """
    )
    (tmp_path / "keep.txt").write_text("keep")
    for guards in (True, False):
        if not guards and sandbox.landlock_abi() == 0:
            continue
        result = sandbox.run_program(code, _python_guards=guards)
        assert result.status == "passed", result.stderr_tail
        workdir = result.stdout_tail.strip()
        assert workdir != str(tmp_path) and os.path.basename(workdir) == "work"
        assert not os.path.exists(workdir) and not os.path.exists(os.path.dirname(workdir))
        assert sorted(os.listdir(tmp_path)) == ["keep.txt"]
    # Removed after a timeout as well.
    result = sandbox.run_program("import os\nprint(os.getcwd(), flush=True)\nwhile True: pass", timeout=1.0)
    assert result.status == "timeout" and not os.path.exists(result.stdout_tail.strip())


def test_infinite_loop_times_out():
    start = time.monotonic()
    result = sandbox.run_program("while True:\n    pass", timeout=2.0)
    assert result.status == "timeout" and not result.passed
    assert 1.9 < result.seconds < 4.0 and time.monotonic() - start < 6.0
    assert "timeout" in result.stderr_tail


def test_memory_limit_is_the_sandboxs():
    # 200 MB is nothing to the host: only the sandbox's 100 MiB limit refuses it.
    result = sandbox.run_program("x = bytearray(200 * 2**20)\nprint('allocated')", memory_mb=100)
    assert result.status == "failed" and "allocated" not in result.stdout_tail
    assert "[sandbox] the program reached its memory limit (100 MiB" in result.stderr_tail
    assert "MemoryError" in result.stderr_tail
    # Growing step by step is stopped too, and reported the same way. (The
    # limit ends it in well under a second; the timeout only has to outlast a
    # slow start on a busy machine, or it would be reported instead.)
    grow = sandbox.run_program("chunks = []\nwhile True:\n    chunks.append(bytearray(2**26))",
                               timeout=60.0, memory_mb=512)
    assert grow.status == "failed" and "reached its memory limit (512 MiB" in grow.stderr_tail
    assert sandbox.run_program("x = bytearray(200 * 2**20)", memory_mb=None).passed


def test_network_is_refused_by_the_sandbox():
    # A listener on the host's loopback: without a sandbox, connecting works.
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        code = textwrap.dedent(
            f"""
            import socket
            try:
                client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                client.settimeout(2)
                client.connect(("127.0.0.1", {port}))
                print("connected", flush=True)
            except OSError as error:
                print("refused:", type(error).__name__, error.errno, error, flush=True)
            """
        )
        result = sandbox.run_program(code, timeout=5.0)
        assert "connected" not in result.stdout_tail
        assert "network access is disabled in the sandbox (socket.__new__)" in result.stdout_tail
        for other in ("import socket\nsocket.socket(socket.AF_INET, socket.SOCK_DGRAM)",
                      "import socket\nsocket.getaddrinfo('example.com', 80)",
                      "import urllib.request\nurllib.request.urlopen('http://127.0.0.1:%d' % 1)"):
            refused = sandbox.run_program(other, timeout=5.0)
            assert refused.status == "failed" and "network access is disabled" in refused.stderr_tail
        # Without the Python-level guard: Landlock refuses TCP connect
        # (EACCES), or the empty network namespace has no route (ENETUNREACH).
        if sandbox.landlock_abi() < 4 and not sandbox.network_isolation_prefix():
            pytest.skip("neither Landlock >= 4 nor `unshare -n` works on this machine")
        kernel = sandbox.run_program(code, timeout=5.0, _python_guards=False)
        assert "connected" not in kernel.stdout_tail and "refused:" in kernel.stdout_tail
        assert int(kernel.stdout_tail.split()[2]) in (errno.EACCES, errno.ENETUNREACH), kernel
        server.settimeout(0.1)
        with pytest.raises(TimeoutError):
            server.accept()


def test_fork_bomb_is_contained():
    # Bounded: at most 200 children, each exiting within 3 s, if containment failed.
    code = textwrap.dedent(
        """
        import os, time
        deadline = time.time() + 1.0
        n = 0
        while time.time() < deadline and n < 200:
            if os.fork() == 0:
                time.sleep(3)
                os._exit(0)
            n += 1
        """
    )
    result = sandbox.run_program(code, timeout=2.0)
    assert result.status == "failed" and "os.fork is disabled" in result.stderr_tail
    for code in ("import subprocess\nsubprocess.run(['sleep', '5'])",
                 "import os\nos.system('sleep 5')",
                 "import os\nos.execv('/bin/sleep', ['sleep', '5'])",
                 "import multiprocessing"):
        assert sandbox.run_program(code, timeout=2.0).status == "failed", code


def test_processes_escaping_the_guard_are_killed():
    # Without the Python-level guard, os.fork works: 10 children (half leave
    # the process group with setsid), all sleeping; bounded to 30 s.
    code = textwrap.dedent(
        """
        import os, time
        for i in range(10):
            pid = os.fork()
            if pid == 0:
                if i % 2:
                    os.setsid()
                time.sleep(30)
                os._exit(0)
            print(pid, flush=True)
        time.sleep(30)
        """
    )
    result = sandbox.run_program(code, timeout=2.0, _python_guards=False)
    assert result.status == "timeout"
    pids = [int(line) for line in result.stdout_tail.split()]
    assert len(pids) == 10 and all(pid > 0 for pid in pids)
    time.sleep(0.2)
    assert [pid for pid in pids if alive(pid)] == []


def test_rlimit_nproc_bounds_forks_as_root_too():
    # Without the Python-level guard, RLIMIT_NPROC must stop the loop: under
    # root the program runs as a fresh uid with exactly `max_processes`
    # extra tasks, otherwise the user's current count + max_processes + 4.
    # Unbounded, it would make 100 children (each exits within 20 s anyway).
    code = textwrap.dedent(
        """
        import os, time
        made = 0
        for i in range(100):
            try:
                pid = os.fork()
            except OSError:
                continue
            if pid == 0:
                time.sleep(20)
                os._exit(0)
            made += 1
        print(made, flush=True)
        """
    )
    result = sandbox.run_program(code, timeout=10.0, max_processes=8, _python_guards=False)
    assert result.passed and result.stdout_tail.strip(), result.stderr_tail
    made = int(result.stdout_tail.strip())
    assert 1 <= made <= (8 if os.geteuid() == 0 else 20)


def test_output_is_captured_and_truncated():
    result = sandbox.run_program("import sys\nprint('x' * 100000)\nsys.stderr.write('e' * 100000)",
                                 tail_chars=1000)
    assert result.passed and len(result.stdout_tail) <= 1000 and len(result.stderr_tail) <= 1000
    assert sandbox.run_program("import sys\nprint(sys.stdin.read() == '')").stdout_tail.strip() == "True"


def test_run_many_keeps_order_and_runs_in_parallel():
    programs = ["import time\ntime.sleep(1)\nprint(%d)" % i for i in range(4)]
    programs.append("raise ValueError('boom')")
    start = time.monotonic()
    results = sandbox.run_many(programs, timeout=5.0, max_workers=2)
    elapsed = time.monotonic() - start
    assert [r.stdout_tail.strip() for r in results[:4]] == ["0", "1", "2", "3"]
    assert [r.status for r in results] == ["passed"] * 4 + ["failed"]
    assert elapsed < 3.8  # 4 x 1 s on 2 workers
    assert sandbox.run_many([]) == []
    code = "def f():\n    return 1"
    tests = [["assert f() == 1"], ["assert f() == 2"], None]
    checked = sandbox.run_many([code] * 3, tests=tests)
    assert [r.passed for r in checked] == [True, False, True]


def test_bad_arguments_raise_before_anything_runs(monkeypatch):
    def never(*args, **kwargs):
        raise AssertionError("a program ran")

    monkeypatch.setattr(sandbox.subprocess, "Popen", never)
    for kwargs, message in (
        ({"timeout": 0}, "`timeout` must be a positive"),
        ({"timeout": -1.0}, "`timeout` must be a positive"),
        ({"timeout": float("nan")}, "`timeout` must be a positive"),
        ({"timeout": True}, "`timeout` must be a positive"),
        ({"memory_mb": 0}, "`memory_mb` must be a positive"),
        ({"memory_mb": -512}, "`memory_mb` must be a positive"),
        ({"max_processes": -1}, "`max_processes`"),
        ({"max_output_mb": 0}, "`max_output_mb`"),
        ({"tests": [1]}, "`tests[0]` must be a string"),
    ):
        with pytest.raises(ValueError, match=message.replace("[", r"\[")):
            sandbox.run_program("pass", **kwargs)
    with pytest.raises(ValueError, match="`code` must be a string"):
        sandbox.run_program(b"pass")
    with pytest.raises(ValueError, match="`timeout` must be a positive"):
        sandbox.check_correctness("pass", ["assert True"], timeout=0)
    with pytest.raises(ValueError, match="one entry per program"):
        sandbox.run_many(["pass", "pass"], tests=[["assert True"]])
    with pytest.raises(ValueError, match="`memory_mb` must be a positive"):
        sandbox.run_many(["pass", "pass"], memory_mb=-1)
    with pytest.raises(ValueError, match="`max_workers`"):
        sandbox.run_many(["pass"], max_workers=0)


def test_sandbox_errors_are_reported_not_raised(monkeypatch):
    def broken(*args, **kwargs):
        raise OSError("no processes left")

    monkeypatch.setattr(sandbox.subprocess, "Popen", broken)
    result = sandbox.run_program("print(1)")
    assert result.status == "error" and "no processes left" in result.stderr_tail
    assert result.returncode is None


def test_landlock_probe_matches_the_kernel():
    abi = sandbox.landlock_abi()
    assert isinstance(abi, int) and abi >= 0
    release = tuple(int(part) for part in os.uname().release.split("-")[0].split(".")[:2])
    if release < (5, 13):
        assert abi == 0
