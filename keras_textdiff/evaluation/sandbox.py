"""Run untrusted, model-generated Python programs in a contained subprocess.

Each program runs in its own `sys.executable -I` process, in a new session
(process group), in a fresh temporary working directory that is always
removed afterwards, with stdin closed and stdout/stderr captured to files
and truncated. Containment, in layers:

- wall-clock timeout (the whole process group is SIGKILLed when it expires);
- `RLIMIT_AS` (memory), `RLIMIT_CPU` (CPU seconds), `RLIMIT_NPROC` (process
  count, relative to how many tasks the user already runs), `RLIMIT_FSIZE`
  (file and captured-output size) and `RLIMIT_CORE = 0`, set by the child
  on itself before any program code runs;
- a guard preamble in the child that disables process creation (`os.fork`,
  `subprocess`, `os.system`, `os.exec*`, ...), signals to other processes
  (`os.kill`), leaving the process group (`os.setsid`), `ctypes`, raising
  rlimits, all sockets (`socket.socket`, `getaddrinfo`, ...) and writing,
  deleting or renaming files outside the working directory;
- a network namespace with no interfaces (`unshare -n`, or `unshare -rn`
  for non-root users) when the `unshare` tool works here;
- at the end, `os.killpg` of the program's process group plus a sweep of
  `/proc` for any process still carrying this run's private environment
  marker (catches children that left the process group), all SIGKILLed.

Whatever the program does, `run_program` returns an `ExecutionResult` and
never raises for the program's behaviour.

Limitations: the preamble is Python-level, so a program determined to
escape it (e.g. re-importing `ctypes` after deleting the guard's entry in
`sys.modules`) can fork; then `RLIMIT_NPROC` bounds the fork count for a
non-root user, but root ignores `RLIMIT_NPROC`, and only the process-group
kill and the environment-marker sweep remain (a process that also clears
its environment block and leaves the group would survive). Root is also not
kept from writing files outside the working directory through raw file
descriptors, nor from the network when `unshare` is unavailable. Use a
container or VM for hostile code.

Example:

>>> result = run_program("print(sum(range(10)))", timeout=5.0)
>>> result.passed, result.status, result.stdout_tail.strip()
(True, 'passed', '45')
>>> check_correctness("def add(a, b):\\n    return a - b",
...                   ["assert add(1, 2) == 3"]).status
'failed'
"""

import concurrent.futures
import dataclasses
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid

STATUSES = ("passed", "failed", "timeout", "error")
_MARKER_VARIABLE = "KERAS_TEXTDIFF_SANDBOX_ID"


@dataclasses.dataclass(frozen=True)
class ExecutionResult:
    """The outcome of one sandboxed program.

    Attributes:
        passed: True when the program exited with status 0 in time.
        status: `"passed"`; `"failed"` (non-zero exit, an exception, killed
            by a memory/file-size limit or a signal); `"timeout"` (wall-clock
            or CPU-time limit); `"error"` (the sandbox itself could not run
            it).
        stderr_tail: the last characters of stderr (plus a note from the
            sandbox for timeouts and signals).
        seconds: wall-clock seconds the program ran.
        stdout_tail: the last characters of stdout.
        returncode: the process's exit code (negative: killed by a signal),
            None if it never ran.
    """

    passed: bool
    status: str
    stderr_tail: str
    seconds: float
    stdout_tail: str = ""
    returncode: int = None


# The child's first code: set resource limits on itself, install the guards,
# then run the program file (so tracebacks show the program's line numbers).
_RUNNER = r'''
import sys
_program_path, _workdir = sys.argv[1], sys.argv[2]
_memory, _cpu, _nproc, _fsize = (int(v) for v in sys.argv[3:7])
sys.argv = [_program_path]

def _install_guards():
    import builtins, errno, io, os, resource

    def limit(kind, value):
        if value > 0:
            try:
                resource.setrlimit(kind, (value, value))
            except (ValueError, OSError):
                pass

    limit(resource.RLIMIT_AS, _memory)
    limit(resource.RLIMIT_CPU, _cpu)
    limit(resource.RLIMIT_NPROC, _nproc)
    limit(resource.RLIMIT_FSIZE, _fsize)
    try:
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    except (ValueError, OSError):
        pass

    def denied(name):
        def deny(*args, **kwargs):
            raise PermissionError(errno.EPERM, name + " is disabled in the sandbox")
        deny.__name__ = name
        return deny

    workdir = os.path.realpath(_workdir)
    import posix, _posixsubprocess, signal
    for name in (
        "fork", "forkpty", "vfork", "system", "popen", "posix_spawn",
        "posix_spawnp", "execv", "execve", "execl", "execle", "execlp",
        "execlpe", "execvp", "execvpe", "spawnl", "spawnle", "spawnlp",
        "spawnlpe", "spawnv", "spawnve", "spawnvp", "spawnvpe", "kill",
        "killpg", "setsid", "setpgid", "setpgrp", "pidfd_open", "chroot", "setuid", "seteuid", "setreuid", "setresuid",
        "register_at_fork",
    ):
        for module in (os, posix):
            if hasattr(module, name):
                setattr(module, name, denied("os." + name))
    _posixsubprocess.fork_exec = denied("subprocess")
    signal.pthread_kill = denied("signal.pthread_kill")
    resource.setrlimit = denied("resource.setrlimit")
    if hasattr(resource, "prlimit"):
        resource.prlimit = denied("resource.prlimit")
    for name in ("ctypes", "_ctypes", "multiprocessing"):
        sys.modules[name] = None  # `import ctypes` raises ImportError.

    import socket, _socket

    class DeniedSocket(socket.socket):
        def __init__(self, *args, **kwargs):
            raise PermissionError(errno.EACCES, "network access is disabled in the sandbox")

    socket.socket = socket.SocketType = _socket.socket = DeniedSocket
    for name in (
        "create_connection", "create_server", "socketpair", "fromfd",
        "getaddrinfo", "gethostbyname", "gethostbyname_ex", "gethostbyaddr",
    ):
        for module in (socket, _socket):
            if hasattr(module, name):
                setattr(module, name, denied("socket." + name))

    # Writes, deletions and renames only inside the working directory.
    def inside(path):
        if isinstance(path, int):
            return True
        try:
            real = os.path.realpath(os.fsdecode(path))
        except (TypeError, ValueError):
            return False
        return real == workdir or real.startswith(workdir + os.sep) or real == os.devnull

    def check(name, path):
        if not inside(path):
            raise PermissionError(
                errno.EACCES, name + ": writing outside the sandbox's directory", str(path)
            )

    real_open = builtins.open

    def guarded_open(file, mode="r", *args, **kwargs):
        if any(c in mode for c in "wax+"):
            check("open", file)
        return real_open(file, mode, *args, **kwargs)

    builtins.open = io.open = guarded_open
    write_flags = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
    real_os_open = os.open

    def guarded_os_open(path, flags, *args, **kwargs):
        if flags & write_flags:
            check("os.open", path)
        return real_os_open(path, flags, *args, **kwargs)

    os.open = posix.open = guarded_os_open

    def guard_paths(name, count):
        real = getattr(os, name, None)
        if real is None:
            return

        def guarded(*args, **kwargs):
            for path in args[:count]:
                check("os." + name, path)
            return real(*args, **kwargs)

        setattr(os, name, guarded)
        setattr(posix, name, guarded)

    for name in ("remove", "unlink", "rmdir", "mkdir", "truncate", "chmod",
                 "chown", "lchown", "utime", "mkfifo", "mknod"):
        guard_paths(name, 1)
    for name in ("rename", "replace", "link", "symlink"):
        guard_paths(name, 2)


_install_guards()
del _install_guards
with open(_program_path, encoding="utf-8") as _file:
    _source = _file.read()
_globals = {"__name__": "__main__", "__file__": _program_path, "__builtins__": __builtins__}
del _file
exec(compile(_source, _program_path, "exec"), _globals)
'''

_network_prefix_cache = None


def network_isolation_prefix():
    """The command prefix that puts the child in an empty network namespace.

    `["unshare", "-n"]` (root) or `["unshare", "-rn"]` (unprivileged user
    namespaces), whichever works here, else `[]` (then only the preamble
    blocks sockets). Probed once per process.
    """
    global _network_prefix_cache
    if _network_prefix_cache is None:
        _network_prefix_cache = []
        unshare = shutil.which("unshare")
        if unshare and sys.platform.startswith("linux"):
            for flags in ("-n", "-rn"):
                try:
                    ok = subprocess.run(
                        [unshare, flags, "--", sys.executable, "-I", "-c", "pass"],
                        stdin=subprocess.DEVNULL,
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                        timeout=10,
                    ).returncode == 0
                except (OSError, subprocess.SubprocessError):
                    ok = False
                if ok:
                    _network_prefix_cache = [unshare, flags, "--"]
                    break
    return list(_network_prefix_cache)


def _user_task_count():
    """How many tasks (processes and threads) this real uid runs now."""
    uid, count = os.getuid(), 0
    try:
        entries = os.listdir("/proc")
    except OSError:
        return 0
    for name in entries:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/status", "rb") as f:
                status = f.read()
        except OSError:
            continue
        task_uid = threads = None
        for line in status.splitlines():
            if line.startswith(b"Uid:"):
                task_uid = int(line.split()[1])
            elif line.startswith(b"Threads:"):
                threads = int(line.split()[1])
        if task_uid == uid:
            count += threads or 1
    return count


def _marked_pids(marker):
    needle = f"{_MARKER_VARIABLE}={marker}".encode()
    pids = []
    try:
        entries = os.listdir("/proc")
    except OSError:
        return pids
    for name in entries:
        if not name.isdigit() or int(name) == os.getpid():
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as f:
                environ = f.read()
        except OSError:
            continue
        if needle in environ.split(b"\0"):
            pids.append(int(name))
    return pids


def _kill_everything(process, marker):
    """SIGKILL the program's process group and every marked process."""
    for _ in range(50):
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError, OSError):
            pass
        pids = _marked_pids(marker)
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError, OSError):
                pass
        time.sleep(0.01)


def _tail(path, max_chars):
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 4 * max_chars))
            data = f.read()
    except OSError:
        return ""
    text = data.decode("utf-8", errors="replace")
    return text[-max_chars:] if len(text) > max_chars else text


def run_program(
    code,
    timeout=10.0,
    memory_mb=1024,
    *,
    max_processes=16,
    max_output_mb=16,
    tail_chars=4000,
    isolate_network=True,
):
    """Run one Python program in the sandbox.

    Args:
        code: the program's source.
        timeout: wall-clock seconds before the process group is killed. The
            CPU-time limit is `ceil(timeout) + 1` seconds.
        memory_mb: address-space limit (`RLIMIT_AS`) in MiB; None or 0 for
            none.
        max_processes: extra tasks the program may start beyond those the
            user already runs (`RLIMIT_NPROC`; root is exempt from it).
        max_output_mb: limit on any file the program writes, its captured
            stdout/stderr included (`RLIMIT_FSIZE`).
        tail_chars: how many trailing characters of stdout/stderr to keep.
        isolate_network: also run in an empty network namespace when
            `unshare` works here (sockets are blocked by the preamble
            either way).

    Returns:
        An `ExecutionResult`.

    Example:

    >>> run_program("while True: pass", timeout=1.0).status
    'timeout'
    """
    start = time.monotonic()
    marker = uuid.uuid4().hex
    base = None
    process = None
    status, note, returncode = "error", "", None
    try:
        base = tempfile.mkdtemp(prefix="textdiff_sandbox_")
        workdir = os.path.join(base, "work")
        os.mkdir(workdir)
        program_path = os.path.join(workdir, "program.py")
        with open(program_path, "w", encoding="utf-8") as f:
            f.write(code)
        runner_path = os.path.join(base, "runner.py")
        with open(runner_path, "w", encoding="utf-8") as f:
            f.write(_RUNNER)
        memory = int(memory_mb * 2**20) if memory_mb else 0
        cpu = int(math.ceil(timeout)) + 1
        nproc = _user_task_count() + int(max_processes) + 4
        fsize = int(max_output_mb * 2**20)
        command = [
            sys.executable, "-I", runner_path, program_path, workdir,
            str(memory), str(cpu), str(nproc), str(fsize),
        ]
        if isolate_network:
            command = network_isolation_prefix() + command
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": workdir,
            "TMPDIR": workdir,
            "LANG": "C.UTF-8",
            "PYTHONIOENCODING": "utf-8",
            "OMP_NUM_THREADS": "1",
            "OPENBLAS_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
            _MARKER_VARIABLE: marker,
        }
        stdout_path = os.path.join(base, "stdout")
        stderr_path = os.path.join(base, "stderr")
        with open(stdout_path, "wb") as out, open(stderr_path, "wb") as err:
            start = time.monotonic()
            process = subprocess.Popen(
                command,
                cwd=workdir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,
                close_fds=True,
            )
            try:
                returncode = process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                status = "timeout"
                note = f"[sandbox] killed after the {timeout:g} s timeout"
        seconds = time.monotonic() - start
        if status != "timeout":
            if returncode == 0:
                status = "passed"
            elif returncode in (-signal.SIGXCPU, -signal.SIGKILL) and seconds < timeout:
                # RLIMIT_CPU: SIGXCPU at the soft limit (SIGKILL at the hard one).
                status = "timeout"
                note = "[sandbox] killed by the CPU-time limit"
            else:
                status = "failed"
                if returncode is not None and returncode < 0:
                    try:
                        name = signal.Signals(-returncode).name
                    except ValueError:
                        name = str(-returncode)
                    note = f"[sandbox] killed by signal {name}"
        stdout_tail = _tail(stdout_path, tail_chars)
        stderr_tail = _tail(stderr_path, tail_chars)
    except Exception as e:  # The sandbox's own failure: never raise.
        status = "error"
        seconds = time.monotonic() - start
        stdout_tail = ""
        stderr_tail = f"[sandbox] {type(e).__name__}: {e}"
    finally:
        if process is not None:
            _kill_everything(process, marker)
            try:
                process.wait(timeout=5)
            except Exception:
                pass
        if base is not None:
            shutil.rmtree(base, ignore_errors=True)
    if note:
        stderr_tail = (stderr_tail + "\n" + note).strip()[-tail_chars:]
    return ExecutionResult(
        passed=status == "passed",
        status=status,
        stderr_tail=stderr_tail,
        seconds=seconds,
        stdout_tail=stdout_tail,
        returncode=process.returncode if process is not None else None,
    )


def build_program(program, tests, setup_code=""):
    """`setup_code + program + tests`, MBPP style, one piece per line block.

    Args:
        program: the generated code.
        tests: a string, or a list of test statements (e.g. asserts).
        setup_code: code run first (imports; for some MBPP tasks the
            reference solution followed by `test_setup_code`).
    """
    if not isinstance(tests, str):
        tests = "\n".join(tests)
    pieces = [setup_code, program, tests]
    return "\n".join(piece for piece in pieces if piece) + "\n"


def check_correctness(program, tests, setup_code="", timeout=10.0, **kwargs):
    """Run `setup_code + program + tests` in the sandbox (MBPP style).

    Example:

    >>> check_correctness("def add(a, b):\\n    return a + b",
    ...                   ["assert add(1, 2) == 3"]).passed
    True
    """
    return run_program(build_program(program, tests, setup_code), timeout=timeout, **kwargs)


def humaneval_program(prompt, completion, test, entry_point):
    """HumanEval's program: `prompt + completion + test + check(entry_point)`."""
    return prompt + completion + "\n" + test + "\n" + f"check({entry_point})\n"


def check_humaneval(prompt, completion, test, entry_point, timeout=10.0, **kwargs):
    """Run a HumanEval completion against its `check` function.

    Example:

    >>> check_humaneval("def inc(x):\\n", "    return x + 1\\n",
    ...                 "def check(f):\\n    assert f(1) == 2", "inc").passed
    True
    """
    return run_program(
        humaneval_program(prompt, completion, test, entry_point), timeout=timeout, **kwargs
    )


def run_many(programs, timeout=10.0, memory_mb=1024, *, max_workers=2, **kwargs):
    """Run several programs in parallel (a thread pool of `max_workers`).

    Args:
        programs: list of program sources.
        timeout, memory_mb, **kwargs: as for `run_program`, per program.
        max_workers: programs running at the same time.

    Returns:
        A list of `ExecutionResult`, in the order of `programs`.

    Example:

    >>> [r.status for r in run_many(["pass", "raise SystemExit(1)"])]
    ['passed', 'failed']
    """
    programs = list(programs)
    if not programs:
        return []
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, int(max_workers))) as pool:
        futures = [
            pool.submit(run_program, code, timeout, memory_mb, **kwargs) for code in programs
        ]
        return [future.result() for future in futures]
