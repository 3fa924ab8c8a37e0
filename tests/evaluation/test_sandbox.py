import os
import textwrap
import time

import pytest

from keras_textdiff.evaluation import sandbox


def alive(pid):
    """True if `pid` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state not in ("Z", "X")


def test_correct_program_passes_and_wrong_one_fails():
    good = sandbox.check_correctness(
        "def add(a, b):\n    return a + b", ["assert add(1, 2) == 3", "assert add(0, 0) == 0"],
        setup_code="import math",
    )
    assert good.passed and good.status == "passed" and good.returncode == 0
    bad = sandbox.check_correctness("def add(a, b):\n    return a - b", ["assert add(1, 2) == 3"])
    assert not bad.passed and bad.status == "failed"
    assert "AssertionError" in bad.stderr_tail and 'program.py", line 3' in bad.stderr_tail
    syntax = sandbox.run_program("def f(:\n  pass")
    assert syntax.status == "failed" and "SyntaxError" in syntax.stderr_tail


def test_humaneval_helper():
    prompt = 'def inc(x):\n    """Add one."""\n'
    test = "def check(candidate):\n    assert candidate(1) == 2\n    assert candidate(-1) == 0\n"
    assert sandbox.humaneval_program(prompt, "    return x + 1\n", test, "inc").endswith("check(inc)\n")
    assert sandbox.check_humaneval(prompt, "    return x + 1\n", test, "inc").passed
    assert sandbox.check_humaneval(prompt, "    return x + 2\n", test, "inc").status == "failed"


def test_infinite_loop_times_out():
    start = time.monotonic()
    result = sandbox.run_program("while True:\n    pass", timeout=2.0)
    assert result.status == "timeout" and not result.passed
    assert 1.9 < result.seconds < 4.0 and time.monotonic() - start < 6.0
    assert "timeout" in result.stderr_tail


def test_huge_allocation_is_contained():
    result = sandbox.run_program("x = bytearray(50 * 2**30)\nprint('allocated')", memory_mb=512)
    assert result.status == "failed" and "MemoryError" in result.stderr_tail
    assert "allocated" not in result.stdout_tail
    # Growing step by step is stopped too.
    grow = sandbox.run_program("chunks = []\nwhile True:\n    chunks.append(bytearray(2**26))",
                               timeout=5.0, memory_mb=512)
    assert grow.status == "failed" and "MemoryError" in grow.stderr_tail


def test_network_is_blocked():
    code = "import socket\nsocket.create_connection(('1.1.1.1', 80), timeout=2)\nprint('connected')"
    result = sandbox.run_program(code, timeout=5.0)
    assert result.status == "failed" and "connected" not in result.stdout_tail
    for code in (
        "import socket\nsocket.socket(socket.AF_INET, socket.SOCK_STREAM)",
        "import urllib.request\nurllib.request.urlopen('http://1.1.1.1', timeout=2)",
        "import socket\nsocket.getaddrinfo('example.com', 80)",
    ):
        assert sandbox.run_program(code, timeout=5.0).status == "failed", code


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
                 "import multiprocessing",
                 "import os\nos.kill(1, 0)"):
        assert sandbox.run_program(code, timeout=2.0).status == "failed", code


def test_processes_escaping_the_guard_are_killed():
    # Bypass the preamble with ctypes: 20 children (half leave the process
    # group with setsid), all sleeping; bounded to 20 processes and 30 s.
    code = textwrap.dedent(
        """
        import sys, time
        for name in ("ctypes", "_ctypes"):
            sys.modules.pop(name, None)
        import ctypes
        libc = ctypes.CDLL(None)
        for i in range(20):
            pid = libc.fork()
            if pid == 0:
                if i % 2:
                    libc.setsid()
                time.sleep(30)
                libc._exit(0)
            print(pid, flush=True)
        time.sleep(30)
        """
    )
    result = sandbox.run_program(code, timeout=2.0)
    assert result.status == "timeout"
    pids = [int(line) for line in result.stdout_tail.split()]
    assert len(pids) == 20 and all(pid > 0 for pid in pids)
    time.sleep(0.2)
    assert [pid for pid in pids if alive(pid)] == []


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
    result = sandbox.run_program(code)
    assert result.status == "passed", result.stderr_tail
    workdir = result.stdout_tail.strip()
    assert workdir != str(tmp_path) and os.path.basename(workdir) == "work"
    assert not os.path.exists(workdir) and not os.path.exists(os.path.dirname(workdir))
    assert sorted(os.listdir(tmp_path)) == ["keep.txt"]
    # Removed after a timeout as well.
    result = sandbox.run_program("import os\nprint(os.getcwd(), flush=True)\nwhile True: pass", timeout=1.0)
    assert result.status == "timeout" and not os.path.exists(result.stdout_tail.strip())


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


def test_sandbox_errors_are_reported_not_raised(monkeypatch):
    def broken(*args, **kwargs):
        raise OSError("no processes left")

    monkeypatch.setattr(sandbox.subprocess, "Popen", broken)
    result = sandbox.run_program("print(1)")
    assert result.status == "error" and "no processes left" in result.stderr_tail
    assert result.returncode is None


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores RLIMIT_NPROC")
def test_rlimit_nproc_bounds_forks_for_non_root_users():
    # Bypass the preamble; RLIMIT_NPROC (tasks the user runs now + 20) must
    # stop the loop long before 100 children (each exits within 20 s anyway).
    code = textwrap.dedent(
        """
        import sys, time
        for name in ("ctypes", "_ctypes"):
            sys.modules.pop(name, None)
        import ctypes
        libc = ctypes.CDLL(None)
        made = 0
        for i in range(100):
            pid = libc.fork()
            if pid == 0:
                time.sleep(20)
                libc._exit(0)
            made += pid > 0
        print(made, flush=True)
        """
    )
    result = sandbox.run_program(code, timeout=5.0)
    assert result.stdout_tail.strip(), result.stderr_tail
    assert int(result.stdout_tail.strip()) < 60
