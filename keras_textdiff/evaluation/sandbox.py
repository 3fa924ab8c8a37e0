"""Run untrusted, model-generated Python programs and check them against tests.

A program passes only when it ran to its end and every one of its tests ran
and held. The verdict does not come from the program's exit status or
output: a harness inside the sandboxed process runs the program, then runs
the tests itself, counts them, and only when all of them held writes a
random nonce (known to the harness and to `run_program`, never to the
program) and the test count to a pipe. `run_program` accepts exactly that
line and nothing else.

Each program runs in its own `sys.executable -I` process, in a new session,
in a fresh temporary working directory that is always removed afterwards,
with stdin empty and stdout/stderr captured to files and truncated.

Threat model
------------
The program is assumed to be written to pass without solving its task (by a
model rewarded for passing), using anything Python and its standard library
allow. `tests/evaluation/test_sandbox.py` tries each item below.

Blocked:

- Passing without the tests. Early exits (`sys.exit(0)`, `raise SystemExit`,
  `os._exit(0)`, a signal) before or during the tests, printed success
  markers, writes to the result pipe (the program does not know the nonce;
  anything extra there fails the run), deleting or editing `program.py` (the
  harness read the tests before the program started). Tests are compiled
  separately from the program, so the program cannot swallow them into a
  string or an `if False:` block either.
- Patching what the tests use. The tests run in a snapshot of the program's
  namespace with a private copy of the builtins taken before the program ran;
  the modules the tests import are imported before the program runs and
  handed to them as private copies; the harness compiles `assert` itself
  (optimizations off, and the statement raises the real `AssertionError`),
  so rebinding `AssertionError`, `len` or `math.isclose` changes nothing.
  A builtin name in the tests means the builtin even when the program
  defines one of that name, unless the tests use no other name of the
  program's (then that function is the one under test: MBPP task 126 asks
  for `sum`).
- Values that lie. Every comparison (`==`, `!=`, `<`, `<=`, `>`, `>=`,
  `in`, `not in`) and every binary arithmetic operator in the tests is
  rewritten to a checked helper. It compares builtin values by their builtin
  semantics, after converting subclasses of builtins to the builtin (without
  calling the subclass's methods) and anything else with an `__index__`,
  `__float__` or `__complex__` to that number (so `Decimal`, `Fraction` and
  numpy scalars compare as the int/float they convert to); a value of
  another type never equals a builtin one. An object whose `__eq__` always
  returns True, an `int` subclass that equals everything, a `__sub__` that
  returns 0 for `abs(f(x) - y) < 1e-6`, a `__contains__` that says yes: all
  fail.
- Tampering with the harness. Frames are hidden from the program
  (`sys._getframe`, `tb_frame`, `gi_frame`, `cr_frame`, `ag_frame`,
  `sys._current_frames`, `gc.get_objects`/`get_referrers`/`get_referents`,
  `sys.settrace`, `sys.setprofile`, `signal.signal`), so the nonce and the
  harness's counters cannot be read. The harness's own functions keep their
  state in keyword defaults, whose reads and writes are refused, and look up
  no global or builtin name once the program has started (the test suite
  checks their bytecode). These refusals come from a `sys.addaudithook`
  hook, which a program cannot remove, plus a few patched functions that
  raise no audit event. `ctypes`, `cffi`, `_testcapi` and subinterpreters
  are refused, and so is loading a fresh copy of `_signal`,
  `_posixsubprocess`, `_imp` or `_ctypes`.
- Reading outside the working directory. With Landlock (Linux >= 5.13; for
  root and non-root alike; `landlock_abi()` says whether this kernel has it)
  the process can read only its working directory, the interpreter's prefix
  (standard library and site-packages), the system library directories,
  `/usr/share/zoneinfo` and a few devices: the user's home (except the
  interpreter inside it), the repository, `/work`, `/etc`, `/proc` and every
  other directory in `/tmp` are refused by the kernel. The same list is
  checked at the Python level on every `open`, `os.listdir` and
  `os.scandir`, the only barrier where Landlock is missing.
- Writing, deleting or renaming outside the working directory (Landlock,
  and the audit hook on `open`, `os.remove`, `os.rename`, `shutil.rmtree`,
  ...); executing any file (Landlock grants no execute right); creating
  processes (`os.fork`, `os.posix_spawn`, `os.system`, `os.exec*`,
  `subprocess`, `multiprocessing`).
- Signals to other processes, the parent included (`os.kill`, `os.killpg`,
  `signal.pidfd_send_signal` are refused). Under root the program also runs
  as a fresh unprivileged uid that keeps only `CAP_DAC_READ_SEARCH` (to reach
  an interpreter under a 0700 home), which the kernel stops from signalling
  root's processes; Landlock ABI >= 6 scopes signals to the sandbox too.
- The network: sockets are refused by the audit hook (`socket.__new__`,
  `getaddrinfo`, ...), TCP bind and connect by Landlock ABI >= 4, and the
  process runs in an empty network namespace (`unshare -n`, or `-rn`
  unprivileged) when `unshare` works here.
- Resources: the wall-clock timeout (the whole process group is SIGKILLed);
  `RLIMIT_AS` (memory; a `MemoryError` is reported as the memory limit),
  `RLIMIT_CPU`, `RLIMIT_FSIZE` (files and captured output),
  `RLIMIT_CORE = 0`, and `RLIMIT_NPROC` (processes and threads: exact under
  root thanks to the fresh uid, relative to the user's current count
  otherwise). At the end every process of the run is SIGKILLed: its process
  group, any process carrying the run's private environment marker, and any
  process of its uid.

Not blocked:

- Interpreter-level attacks. A bug in CPython or in a C extension, a C
  extension that exposes raw memory (numpy's `__array_interface__` with an
  arbitrary address, for instance), or hand-made bytecode loaded with
  `marshal.loads` (building code objects, `CodeType(...)` or `.replace()`, is
  refused; `marshal.loads` is not, imports need it) can read the harness's
  memory, find the nonce and forge a pass. Audit hooks are not a security
  boundary; the kernel layers (Landlock, the uid, namespaces, rlimits) still
  hold then.
- A program that controls both sides of a comparison: `f(1) == f(1)`, two
  objects of the program's own classes, or expected values the tests compute
  through something the program can reach (a function defined in the tests
  and handed to the program exposes the tests' globals through
  `__globals__`). Tests with literal expected values are safe.
- A program that hard-codes the answers: a wrong program the tests do not
  catch, not a sandbox escape.
- Without Landlock, the Python-level file checks resolve paths with
  `os.path.realpath`, which a program can subvert by patching `posixpath`,
  and reads are otherwise only as restricted as the user's permissions.
  Without `unshare`, non-TCP sockets are refused only at the Python level.

Use a container or VM for hostile code beyond this.

A program given without tests (`run_program(code)`) passes when it runs to
its end: exiting early, even with status 0, is a failure. Tests appended to
such a program's text run as the program's own code, without the checked
comparisons and private builtins: give them as `tests` (`check_correctness`,
`check_humaneval` and `run_many(..., tests=...)` do) for the protections
above.

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
import json
import math
import numbers
import os
import random
import secrets
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import time
import uuid

STATUSES = ("passed", "failed", "timeout", "error")
_MARKER_VARIABLE = "KERAS_TEXTDIFF_SANDBOX_ID"


@dataclasses.dataclass(frozen=True)
class ExecutionResult:
    """The outcome of one sandboxed program.

    Attributes:
        passed: True when the program ran to its end and every one of its
            tests ran and held, as reported by the harness through the
            channel the program cannot forge.
        status: `"passed"`; `"failed"` (an exception, a failed test, an
            early exit, the memory limit, a signal, ...); `"timeout"`
            (wall-clock or CPU-time limit); `"error"` (the sandbox itself
            could not run it, or a test does not compile).
        stderr_tail: the last characters of stderr, plus a `[sandbox]` note
            saying why the run did not pass.
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


# The harness: the sandboxed process runs this file. It reads its spec (and
# deletes it), compiles the program and the tests, applies the limits,
# Landlock and the uid switch, installs the guards, then runs the program and
# the tests and reports through the result pipe. Every function that runs
# after the program has started (`_run`, the checked operations, the audit
# hook, the patched functions) looks up no global or builtin name: the
# program can rebind both.
_RUNNER = r'''
import sys


def _checked_operations():
    """The helpers the tests' comparisons and arithmetic are rewritten to."""
    import operator
    import types

    type_, issubclass_, getattr_, iter_, zip_ = type, issubclass, getattr, iter, zip
    int_, float_, complex_, str_, bytes_, bytearray_ = int, float, complex, str, bytes, bytearray
    list_, tuple_, dict_, set_, frozenset_, slice_ = list, tuple, dict, set, frozenset, slice
    index_ = operator.index
    Exception_, TypeError_ = Exception, TypeError
    missing = object()
    leaves = frozenset_({
        type_(None), bool, int_, float_, complex_, str_, bytes_, bytearray_, range, type_,
        type_(Ellipsis), type_(NotImplemented), types.FunctionType,
        types.BuiltinFunctionType, types.ModuleType,
    })
    exact = leaves | {list_, tuple_, dict_, set_, frozenset_}
    exact_numbers = frozenset_({bool, int_, float_, complex_})
    dict_keys, dict_items = type_({}.keys()), type_({}.items())
    full = slice_(None)
    comparisons = {
        "==": operator.eq, "!=": operator.ne, "<": operator.lt,
        "<=": operator.le, ">": operator.gt, ">=": operator.ge,
    }
    arithmetic = {
        "+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv,
        "//": operator.floordiv, "%": operator.mod, "**": operator.pow,
        "@": operator.matmul, "<<": operator.lshift, ">>": operator.rshift,
        "&": operator.and_, "|": operator.or_, "^": operator.xor,
    }

    def number(x):
        # An exact int/float/complex for types that convert to one.
        t = type_(x)
        if getattr_(t, "__index__", None) is not None:
            try:
                return int_.__index__(index_(x))
            except Exception_:
                pass
        if getattr_(t, "__float__", None) is not None:
            try:
                return float_.__float__(float_(x))
            except Exception_:
                pass
        if getattr_(t, "__complex__", None) is not None:
            try:
                return complex_.__complex__(complex_(x))
            except Exception_:
                pass
        return missing

    def canonical(x, depth):
        # `x` as builtin values only, read through the builtin types' own
        # methods (a subclass's overrides are never called), or `missing`.
        t = type_(x)
        if t in leaves:
            return x
        if depth > 200:
            return missing
        try:
            if issubclass_(t, int_):
                return int_.__index__(x)
            if issubclass_(t, float_):
                return float_.__float__(x)
            if issubclass_(t, complex_):
                return complex_.__complex__(x)
            if issubclass_(t, str_):
                return str_.__str__(x)
            if issubclass_(t, bytes_):
                return bytes_.__getitem__(x, full)
            if issubclass_(t, bytearray_):
                return bytearray_.__getitem__(x, full)
            if issubclass_(t, list_) or issubclass_(t, tuple_):
                items = []
                for item in (list_.__iter__(x) if issubclass_(t, list_) else tuple_.__iter__(x)):
                    item = canonical(item, depth + 1)
                    if item is missing:
                        return missing
                    items.append(item)
                return items if issubclass_(t, list_) else tuple_(items)
            if issubclass_(t, dict_) or t is dict_items:
                pairs = dict_.items(x) if issubclass_(t, dict_) else iter_(x)
                out = {}
                for key, value in pairs:
                    key, value = canonical(key, depth + 1), canonical(value, depth + 1)
                    if key is missing or value is missing:
                        return missing
                    out[key] = value
                return out if t is not dict_items else frozenset_(out.items())
            if issubclass_(t, set_) or issubclass_(t, frozenset_) or t is dict_keys:
                if issubclass_(t, set_):
                    elements = set_.__iter__(x)
                elif issubclass_(t, frozenset_):
                    elements = frozenset_.__iter__(x)
                else:
                    elements = iter_(x)
                items = []
                for item in elements:
                    item = canonical(item, depth + 1)
                    if item is missing:
                        return missing
                    items.append(item)
                return frozenset_(items)
        except Exception_:
            return missing
        return number(x)

    def unsupported(op, a, b):
        return TypeError_(
            "'" + op + "' between " + type_(a).__name__ + " and " + type_(b).__name__
            + ": the sandbox's checked operations take builtin values"
        )

    def contains(item, container):
        values = canonical(container, 0)
        if values is missing:
            try:
                elements = list_(iter_(container))
            except TypeError_:
                raise TypeError_(
                    "argument of type '" + type_(container).__name__ + "' is not iterable "
                    "(the sandbox checks `in` by iterating)"
                ) from None
            for element in elements:
                if compare("==", item, element):
                    return True
            return False
        value = canonical(item, 0)
        if value is missing:
            if type_(values) is str_ or type_(values) is bytes_ or type_(values) is bytearray_:
                raise unsupported("in", item, container)
            return False
        return value in values

    def compare(op, a, b):
        if op == "is":
            return a is b
        if op == "is not":
            return a is not b
        if op == "in":
            return contains(a, b)
        if op == "not in":
            return not contains(a, b)
        ca, cb = canonical(a, 0), canonical(b, 0)
        if ca is missing and cb is missing:
            return comparisons[op](a, b)  # Two non-builtin objects: their own rules.
        if ca is missing or cb is missing:
            if op == "==":
                return False
            if op == "!=":
                return True
            raise unsupported(op, a, b)
        return comparisons[op](ca, cb)

    def chain(ops, left, *rights):
        # `a < b < c`: each operand evaluated once and only when needed.
        for op, right in zip_(ops, rights):
            right = right()
            if not compare(op, left, right):
                return False
            left = right
        return True

    def binop(op, a, b):
        function = arithmetic[op]
        ta, tb = type_(a), type_(b)
        if (ta in exact_numbers or tb in exact_numbers) and not (ta in exact and tb in exact):
            ca, cb = canonical(a, 0), canonical(b, 0)
            if ca is missing or cb is missing:
                raise unsupported(op, a, b)
            return function(ca, cb)
        return function(a, b)

    return compare, chain, binop


def _rewrite_tests(tree, names):
    """Rewrite comparisons and arithmetic in a test's AST into helper calls.

    The helpers are called through placeholder string constants (`names`),
    swapped for the helper functions in the compiled code's constants: no
    name the program could rebind stands between a test and its checks.
    """
    import ast

    compare_ops = {
        ast.Eq: "==", ast.NotEq: "!=", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">",
        ast.GtE: ">=", ast.Is: "is", ast.IsNot: "is not", ast.In: "in", ast.NotIn: "not in",
    }
    binary_ops = {
        ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.FloorDiv: "//",
        ast.Mod: "%", ast.Pow: "**", ast.MatMult: "@", ast.LShift: "<<", ast.RShift: ">>",
        ast.BitAnd: "&", ast.BitOr: "|", ast.BitXor: "^",
    }

    def call(name, args):
        return ast.Call(func=ast.Constant(names[name]), args=args, keywords=[])

    class Rewrite(ast.NodeTransformer):
        def visit_Compare(self, node):
            self.generic_visit(node)
            ops = [compare_ops[type(op)] for op in node.ops]
            if len(ops) == 1:
                new = call("compare", [ast.Constant(ops[0]), node.left, node.comparators[0]])
            else:
                thunks = [
                    ast.Lambda(
                        args=ast.arguments(posonlyargs=[], args=[], kwonlyargs=[],
                                           kw_defaults=[], defaults=[]),
                        body=comparator,
                    )
                    for comparator in node.comparators
                ]
                new = call("chain", [ast.Constant(tuple(ops)), node.left] + thunks)
            return ast.copy_location(new, node)

        def visit_BinOp(self, node):
            self.generic_visit(node)
            new = call("binop", [ast.Constant(binary_ops[type(node.op)]), node.left, node.right])
            return ast.copy_location(new, node)

    return ast.fix_missing_locations(Rewrite().visit(tree))


def _bind(code, helpers):
    """`code` with its placeholder constants replaced by the helpers."""
    import types

    consts = []
    for const in code.co_consts:
        if type(const) is str and const in helpers:
            const = helpers[const]
        elif isinstance(const, types.CodeType):
            const = _bind(const, helpers)
        consts.append(const)
    return code.replace(co_consts=tuple(consts))


def _landlock(read_roots, write_roots):
    """Restrict this process's file access with Landlock; its ABI, or 0."""
    import ctypes
    import os
    import stat

    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    abi = libc.syscall(444, None, ctypes.c_size_t(0), ctypes.c_uint32(1))
    if abi < 1:
        return 0
    execute, write_file, read_file, read_dir = 1, 2, 4, 8
    handled = (1 << 13) - 1
    if abi >= 2:
        handled |= 1 << 13  # REFER
    if abi >= 3:
        handled |= 1 << 14  # TRUNCATE
    if abi >= 5:
        handled |= 1 << 15  # IOCTL_DEV
    file_rights = execute | write_file | read_file | (1 << 14) | (1 << 15)

    class Ruleset(ctypes.Structure):
        _fields_ = [("fs", ctypes.c_uint64), ("net", ctypes.c_uint64), ("scoped", ctypes.c_uint64)]

    class PathBeneath(ctypes.Structure):
        _pack_ = 1
        _fields_ = [("allowed", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]

    # ABI 4: TCP bind and connect; ABI 6: abstract unix sockets and signals.
    ruleset = Ruleset(handled, 3 if abi >= 4 else 0, 3 if abi >= 6 else 0)
    size = 8 if abi < 4 else 16 if abi < 6 else 24
    fd = libc.syscall(444, ctypes.byref(ruleset), ctypes.c_size_t(size), ctypes.c_uint32(0))
    if fd < 0:
        return 0
    try:
        rules = [(path, read_file | read_dir) for path in read_roots]
        rules += [(path, handled & ~execute) for path in write_roots]
        for path, access in rules:
            try:
                parent = os.open(path, os.O_PATH | os.O_CLOEXEC)
            except OSError:
                continue
            try:
                if not stat.S_ISDIR(os.fstat(parent).st_mode):
                    access &= file_rights
                rule = PathBeneath(access & handled, parent)
                if libc.syscall(445, fd, 1, ctypes.byref(rule), ctypes.c_uint32(0)) != 0:
                    return 0
            finally:
                os.close(parent)
        if libc.prctl(38, 1, 0, 0, 0) != 0:  # PR_SET_NO_NEW_PRIVS
            return 0
        if libc.syscall(446, fd, ctypes.c_uint32(0)) != 0:
            return 0
    finally:
        os.close(fd)
    return abi


def _switch_user(uid):
    """Become `uid` (from root), keeping only CAP_DAC_READ_SEARCH."""
    import ctypes
    import os

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(8, 1, 0, 0, 0) != 0:  # PR_SET_KEEPCAPS
        return False
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)

    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                    ("inheritable", ctypes.c_uint32)]

    data = (Data * 2)()
    data[0].effective = data[0].permitted = 1 << 2  # CAP_DAC_READ_SEARCH
    if libc.capset(ctypes.byref(Header(0x20080522, 0)), data) != 0:
        return False
    libc.prctl(8, 0, 0, 0, 0)
    return os.getuid() == uid


def _install_guards(workdir, read_roots, write_roots, protected):
    """The audit hook and the patched functions (see the threat model)."""
    import _imp
    import _posixsubprocess
    import _signal
    import errno
    import os
    import posix
    import resource
    import signal
    import types

    type_, getattr_, str_, int_ = type, getattr, str, int
    PermissionError_, ValueError_, ImportError_ = PermissionError, ValueError, ImportError
    Exception_ = Exception
    realpath, fsdecode, readlink = os.path.realpath, os.fsdecode, os.readlink
    EPERM, EACCES = errno.EPERM, errno.EACCES
    denied_events = frozenset({
        "os.fork", "os.forkpty", "os.exec", "os.posix_spawn", "os.spawn", "os.system",
        "os.startfile", "subprocess.Popen", "os.kill", "os.killpg", "signal.pthread_kill",
        "sys._current_frames", "sys.settrace", "sys.setprofile", "gc.get_objects",
        "gc.get_referrers", "gc.get_referents", "resource.setrlimit", "resource.prlimit",
        "code.__new__",  # Hand-made bytecode reads memory at will.
    })
    frame_attributes = frozenset({
        "tb_frame", "gi_frame", "cr_frame", "ag_frame", "gi_code", "cr_code", "ag_code",
    })
    function_attributes = frozenset({"__code__", "__defaults__", "__kwdefaults__"})
    attribute_events = frozenset({"object.__getattr__", "object.__setattr__", "object.__delattr__"})
    denied_imports = frozenset({
        "ctypes", "_ctypes", "cffi", "_cffi_backend", "multiprocessing", "_testcapi",
        "_testinternalcapi", "_testmultiphase", "_testsinglephase", "_testbuffer",
        "_testimportmultiple", "_xxsubinterpreters", "_xxinterpchannels",
    })
    # Path argument positions (and the dir_fd's) of the audit events that write.
    write_events = {
        "os.remove": ((0, 1),), "os.rmdir": ((0, 1),), "os.mkdir": ((0, 2),),
        "os.rename": ((0, 2), (1, 3)), "os.link": ((0, 2), (1, 3)), "os.symlink": ((1, 2),),
        "os.truncate": ((0, -1),), "os.chmod": ((0, 2),), "os.chown": ((0, 3),),
        "os.utime": ((0, 3),), "os.chflags": ((0, -1),), "os.setxattr": ((0, -1),),
        "os.removexattr": ((0, -1),), "shutil.rmtree": ((0, 1),),
    }
    read_events = frozenset({"os.listdir", "os.scandir", "os.walk", "os.fwalk",
                             "os.listxattr", "os.getxattr"})
    write_flags = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
    read_prefixes = tuple(root.rstrip("/") + "/" for root in read_roots)
    write_prefixes = tuple(root.rstrip("/") + "/" for root in write_roots)
    read_roots, write_roots = tuple(read_roots), tuple(write_roots)

    def inside(path, dir_fd, roots, prefixes):
        if path is None:
            path = "."
        if type_(path) is int_:
            return True  # An open file descriptor.
        try:
            path = fsdecode(path)
            if dir_fd is not None and dir_fd >= 0 and not path.startswith("/"):
                path = readlink("/proc/self/fd/" + str_(dir_fd)) + "/" + path
            path = realpath(path)
        except Exception_:
            return False
        return path in roots or path.startswith(prefixes)

    def refuse(what, path):
        raise PermissionError_(EACCES, what + " outside the sandbox's directory is disabled", path)

    def hook(event, args):
        if event in denied_events:
            raise PermissionError_(EPERM, event + " is disabled in the sandbox")
        if event == "sys._getframe":
            raise ValueError_("sys._getframe is disabled in the sandbox")
        if event in attribute_events:
            name = args[1]
            if name in frame_attributes:
                raise PermissionError_(EPERM, name + " is hidden in the sandbox")
            if name in function_attributes:
                owner = getattr_(args[0], "__globals__", None)
                for namespace in protected:
                    if owner is namespace:
                        raise PermissionError_(
                            EPERM, name + " of the sandbox's functions is hidden")
            return
        if event == "open":
            mode, flags = args[1], args[2]
            writing = (type_(flags) is int_ and flags & write_flags) or (
                type_(mode) is str_ and ("w" in mode or "a" in mode or "x" in mode or "+" in mode)
            )
            if writing:
                if not inside(args[0], None, write_roots, write_prefixes):
                    refuse("open: writing", args[0])
            elif not inside(args[0], None, read_roots, read_prefixes):
                refuse("open: reading", args[0])
            return
        if event in write_events:
            for position, dir_fd in write_events[event]:
                path = args[position]
                directory = args[dir_fd] if dir_fd >= 0 else None
                if not inside(path, directory, write_roots, write_prefixes):
                    refuse(event + ": writing", path)
            return
        if event in read_events:
            if not inside(args[0], None, read_roots, read_prefixes):
                refuse(event + ": reading", args[0])
            return
        if event.startswith("socket."):
            raise PermissionError_(
                EACCES, "network access is disabled in the sandbox (" + event + ")")
        if event.startswith("ctypes."):
            raise PermissionError_(EPERM, "ctypes is disabled in the sandbox")
        if event == "import" and type_(args[0]) is str_:
            if args[0].partition(".")[0] in denied_imports:
                # ImportError: what code that can do without the module expects.
                raise ImportError_("importing " + args[0] + " is disabled in the sandbox")

    sys.addaudithook(hook)

    def denied(name):
        message = name + " is disabled in the sandbox"

        def deny(*args, **kwargs):
            raise PermissionError_(EPERM, message)

        deny.__name__ = name.rpartition(".")[2]
        return deny

    # Functions with no audit event.
    for name in ("setsid", "setpgid", "setpgrp", "pidfd_open", "chroot", "setuid", "seteuid",
                 "setreuid", "setresuid", "setgid", "setegid", "setregid", "setresgid",
                 "mkfifo", "mknod"):
        for module in (os, posix):
            if hasattr(module, name):
                setattr(module, name, denied("os." + name))
    _posixsubprocess.fork_exec = denied("subprocess")
    for name in ("signal", "pidfd_send_signal"):
        for module in (signal, _signal):
            if hasattr(module, name):
                setattr(module, name, denied("signal." + name))

    # No fresh copies of the modules patched above (a copy has the originals).
    fresh = denied_imports | {"_signal", "_posixsubprocess", "_imp", "_ctypes", "_cffi_backend"}

    def guarded_create(create):
        def guarded(spec, *args, create=create, fresh=fresh, Spec=types.SimpleNamespace,
                    str_=str_, type_=type_, ImportError_=ImportError):
            name, origin = spec.name, getattr_(spec, "origin", None)
            if type_(name) is not str_ or name.rpartition(".")[2] in fresh:
                raise ImportError_(
                    "loading a fresh copy of " + str_(name) + " is disabled in the sandbox")
            return create(Spec(name=name, origin=origin), *args)

        return guarded

    _imp.create_builtin = guarded_create(_imp.create_builtin)
    _imp.create_dynamic = guarded_create(_imp.create_dynamic)
    for name in ("ctypes", "_ctypes", "multiprocessing"):
        sys.modules[name] = None  # `import ctypes` raises ImportError.


def _test_import(copies, real):
    """The tests' `__import__`: modules imported before the program ran."""

    def test_import(name, globals=None, locals=None, fromlist=(), level=0, *,
                    copies=copies, real=real):
        if level == 0:
            module = copies.get(name if fromlist else name.partition(".")[0])
            if module is not None:
                return module
        return real(name, globals, locals, fromlist, level)

    return test_import


def _run(program, tests, program_names, builtin_names, ns, test_globals, private_builtins,
         ok_line, fail_prefix,
         result_fd, write, exit_, excepthook, sys_module, stderr, flushes,
         exec_, dict_, type_, Base, MemoryError_, SystemExit_):
    # From here on the program runs: no global or builtin names.
    reason = ""
    passed = 0

    def show(error):
        try:
            sys_module.stderr = stderr
            trace = error.__traceback__
            trace = trace.tb_next if trace is not None else None  # Not the harness's frame.
            excepthook(type_(error), Base.with_traceback(error, trace), trace)
        except Base:
            pass

    memory_error = None
    try:
        exec_(program, ns)
    except MemoryError_ as error:
        reason, memory_error = "memory", error
    except SystemExit_ as error:
        reason = "exit"
        show(error)
    except Base as error:
        reason = "error"
        show(error)
    if not reason:
        test_globals.update(ns)
        # Builtin names the tests use are the builtins, not the program's
        # (`len = lambda x: 3`), unless the tests use no other name of the
        # program's: then a function named like a builtin is the one tested
        # (MBPP task 126 asks for `sum`).
        for name in program_names:
            if name in ns:
                for shadow in builtin_names:
                    test_globals.pop(shadow, None)
                break
        for test in tests:
            test_globals["__builtins__"] = dict_(private_builtins)
            try:
                exec_(test, test_globals)
            except MemoryError_ as error:
                reason, memory_error = "memory", error
                break
            except Base as error:
                reason = "test %d" % (passed + 1)
                show(error)
                break
            passed += 1
    if memory_error is not None:
        ns.clear()  # Free the program's memory before reporting.
        test_globals.clear()
        show(memory_error)
        memory_error = error = None
    for flush in flushes:
        try:
            flush()
        except Base:
            pass
    try:
        write(result_fd, ok_line if not reason else (fail_prefix + reason + "\n").encode())
    except Base:
        pass
    exit_(0 if not reason else 1)


def main(spec_path):
    import ast
    import builtins
    import importlib
    import json
    import os
    import resource
    import types
    import warnings

    with open(spec_path, encoding="utf-8") as f:
        spec = json.load(f)
    os.unlink(spec_path)
    nonce, result_fd, path = spec["nonce"], spec["result_fd"], spec["program_path"]
    fail_prefix = nonce + " failed "
    excepthook = sys.__excepthook__

    def finish(line, code):
        sys.stdout.flush()
        sys.stderr.flush()
        os.write(result_fd, (nonce + " " + line + "\n").encode())
        os._exit(code)

    try:
        program = compile(spec["code"], path, "exec", dont_inherit=True, optimize=0)
    except (SyntaxError, ValueError) as error:
        excepthook(type(error), error.with_traceback(None), None)
        finish("failed syntax", 1)

    token = os.urandom(8).hex()
    names = {name: "\0sandbox-" + name + "-" + token for name in ("compare", "chain", "binop")}
    helpers = dict(zip(names.values(), _checked_operations()))
    tests, modules, test_names = [], set(), set()
    for number, test in enumerate(spec["tests"], 1):
        try:
            tree = ast.parse(test["source"], path)
        except (SyntaxError, ValueError) as error:
            excepthook(type(error), error.with_traceback(None), None)
            finish("error test %d" % number, 1)
        ast.increment_lineno(tree, test["line"] - 1)
        for node in ast.walk(tree):
            if isinstance(node, ast.Name):
                test_names.add(node.id)
            elif isinstance(node, ast.Import):
                modules.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules.add(node.module)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "'str' object is not callable" on placeholders.
            code = compile(_rewrite_tests(tree, names), path, "exec", dont_inherit=True, optimize=0)
        tests.append(_bind(code, helpers))

    # Modules the tests import, imported now, handed to the tests as copies.
    copies = {}
    for name in sorted(modules):
        try:
            importlib.import_module(name)
        except Exception:
            continue
        for prefix in (name, name.partition(".")[0]):
            module = sys.modules.get(prefix)
            if module is not None and prefix not in copies:
                copy = types.ModuleType(module.__name__)
                copy.__dict__.update(module.__dict__)
                copies[prefix] = copy

    limits = spec["limits"]
    for kind, value in ((resource.RLIMIT_AS, limits["memory"]),
                        (resource.RLIMIT_CPU, limits["cpu"]),
                        (resource.RLIMIT_NPROC, limits["nproc"]),
                        (resource.RLIMIT_FSIZE, limits["fsize"]),
                        (resource.RLIMIT_CORE, 0)):
        if value > 0 or kind == resource.RLIMIT_CORE:
            try:
                resource.setrlimit(kind, (value, value))
            except (ValueError, OSError):
                pass
    if spec["landlock"]:
        _landlock(spec["read_roots"], spec["write_roots"])
    if spec["uid"] is not None:
        try:
            _switch_user(spec["uid"])
        except OSError:
            pass

    test_globals = {}
    protected = [globals(), test_globals]
    if spec["guards"]:
        _install_guards(spec["workdir"], spec["read_roots"], spec["write_roots"], protected)
    private_builtins = dict(builtins.__dict__)
    private_builtins["__import__"] = _test_import(copies, builtins.__import__)
    module = types.ModuleType("__main__")
    ns = module.__dict__
    ns["__file__"] = path
    ns["__builtins__"] = builtins
    sys.modules["__main__"] = module
    sys.argv = [path]
    ok_line = (nonce + " passed %d\n" % len(tests)).encode()
    flushes = (sys.stdout.flush, sys.stderr.flush)
    builtin_names = tuple(name for name in test_names if name in private_builtins
                          and not name.startswith("__"))
    program_names = tuple(name for name in test_names if name not in private_builtins)
    _run(program, tests, program_names, builtin_names, ns, test_globals, private_builtins,
         ok_line, fail_prefix,
         result_fd, os.write, os._exit, excepthook, sys, sys.stderr, flushes,
         exec, dict, type, BaseException, MemoryError, SystemExit)


main(sys.argv[1])
'''

_network_prefix_cache = None
_landlock_abi_cache = None


def network_isolation_prefix():
    """The command prefix that puts the child in an empty network namespace.

    `["unshare", "-n"]` (root) or `["unshare", "-rn"]` (unprivileged user
    namespaces), whichever works here, else `[]` (then only the harness's
    audit hook and Landlock block sockets). Probed once per process.
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


def landlock_abi():
    """The Landlock ABI version this kernel offers; 0 when it has none.

    Landlock (Linux >= 5.13) is what keeps sandboxed programs from reading
    outside their directory at the kernel level; without it only the
    harness's Python-level check does. Probed once per process.

    >>> landlock_abi() >= 0
    True
    """
    global _landlock_abi_cache
    if _landlock_abi_cache is None:
        _landlock_abi_cache = 0
        if sys.platform.startswith("linux"):
            try:
                import ctypes

                libc = ctypes.CDLL(None, use_errno=True)
                libc.syscall.restype = ctypes.c_long
                # landlock_create_ruleset(NULL, 0, LANDLOCK_CREATE_RULESET_VERSION)
                version = libc.syscall(444, None, ctypes.c_size_t(0), ctypes.c_uint32(1))
                _landlock_abi_cache = max(0, int(version))
            except (OSError, AttributeError):
                pass
    return _landlock_abi_cache


def _read_roots(workdir):
    """What a sandboxed program may read: its directory and the interpreter's files."""
    roots = [workdir, os.devnull, "/dev/urandom", "/dev/zero", "/usr/share/zoneinfo"]
    roots += [sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix]
    paths = sysconfig.get_paths()
    roots += [paths[key] for key in ("stdlib", "platstdlib", "purelib", "platlib") if key in paths]
    roots += ["/lib", "/lib64", "/usr/lib", "/usr/lib64"]
    real = []
    for root in roots:
        root = os.path.realpath(root)
        if root != "/" and os.path.exists(root) and root not in real:
            real.append(root)
    return real


def _sandbox_uid():
    """A fresh unprivileged uid to run as, when we are root; else None."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return None
    try:
        with open("/proc/self/uid_map") as f:
            fields = [int(v) for v in f.read().split()]
    except (OSError, ValueError):
        return None
    uid = random.SystemRandom().randrange(2**30, 2**31 - 2)
    for start, _, count in zip(fields[0::3], fields[1::3], fields[2::3]):
        if start <= uid < start + count:
            return uid
    return None


def _task_counts(uid):
    """(tasks this real uid runs now, pids of real uid `uid` if not None)."""
    my_uid, count, pids = os.getuid(), 0, []
    try:
        entries = os.listdir("/proc")
    except OSError:
        return 0, pids
    for name in entries:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/status", "rb") as f:
                status = f.read()
        except OSError:
            continue
        task_uid = threads = state = None
        for line in status.splitlines():
            if line.startswith(b"Uid:"):
                task_uid = int(line.split()[1])
            elif line.startswith(b"Threads:"):
                threads = int(line.split()[1])
            elif line.startswith(b"State:"):
                state = line.split()[1]
        if task_uid == my_uid:
            count += threads or 1
        if uid is not None and task_uid == uid and state not in (b"Z", b"X"):
            pids.append(int(name))  # Zombies are dead already.
    return count, pids


def _marked_pids(marker, uid):
    needle = f"{_MARKER_VARIABLE}={marker}".encode()
    pids = set(_task_counts(uid)[1]) if uid is not None else set()
    try:
        entries = os.listdir("/proc")
    except OSError:
        return sorted(pids)
    for name in entries:
        if not name.isdigit() or int(name) == os.getpid():
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as f:
                environ = f.read()
        except OSError:
            continue
        if needle in environ.split(b"\0"):
            pids.add(int(name))
    return sorted(pids)


def _kill_everything(process, marker, uid=None):
    """SIGKILL the program's process group, every marked process and its uid's."""
    for _ in range(50):
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError, OSError):
            pass
        pids = _marked_pids(marker, uid)
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


def _read_all(fd, limit=65536):
    data = b""
    while len(data) < limit:
        try:
            chunk = os.read(fd, limit)
        except (BlockingIOError, InterruptedError, OSError):
            break
        if not chunk:
            break
        data += chunk
    return data


def _is_number(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _check_tests(tests, name="tests"):
    """`tests` as a list of test sources (a string is one test)."""
    if tests is None:
        return []
    if isinstance(tests, str):
        return [tests]
    try:
        tests = list(tests)
    except TypeError:
        raise ValueError(
            f"`{name}` must be a list of test sources (strings), a string or None; "
            f"got {type(tests).__name__}."
        ) from None
    for i, test in enumerate(tests):
        if not isinstance(test, str):
            raise ValueError(
                f"`{name}[{i}]` must be a string of Python source (e.g. 'assert f(1) == 2'); "
                f"got {type(test).__name__}: {test!r}."
            )
    return tests


def _check_arguments(code, timeout, memory_mb, max_processes, max_output_mb, tail_chars):
    if not isinstance(code, str):
        raise ValueError(f"`code` must be a string of Python source; got {type(code).__name__}.")
    if not _is_number(timeout) or not math.isfinite(timeout) or timeout <= 0:
        raise ValueError(
            f"`timeout` must be a positive, finite number of seconds; got {timeout!r}."
        )
    if memory_mb is not None and (
        not _is_number(memory_mb) or not math.isfinite(memory_mb) or memory_mb <= 0
    ):
        raise ValueError(
            f"`memory_mb` must be a positive number of MiB, or None for no memory limit; "
            f"got {memory_mb!r}."
        )
    if isinstance(max_processes, bool) or not isinstance(max_processes, int) or max_processes < 0:
        raise ValueError(f"`max_processes` must be an integer >= 0; got {max_processes!r}.")
    if not _is_number(max_output_mb) or not math.isfinite(max_output_mb) or max_output_mb <= 0:
        raise ValueError(
            f"`max_output_mb` must be a positive number of MiB; got {max_output_mb!r}."
        )
    if isinstance(tail_chars, bool) or not isinstance(tail_chars, int) or tail_chars < 0:
        raise ValueError(f"`tail_chars` must be an integer >= 0; got {tail_chars!r}.")


def _program_text(code, tests):
    """The `program.py` text (code, then each test) and each test's first line."""
    text = code if code.endswith("\n") or not code else code + "\n"
    lines = []
    for test in tests:
        lines.append(text.count("\n") + 1)
        text += test if test.endswith("\n") else test + "\n"
    return text, lines


def _verdict_note(data, nonce, num_tests, returncode, memory_mb):
    """(status, note) for a run that did not pass, from the harness's report."""
    lines = data.decode("utf-8", errors="replace").splitlines()
    trusted = [line[len(nonce) + 1 :] for line in lines if line.startswith(nonce + " ")]
    if len(trusted) != len(lines):
        return "failed", "[sandbox] the program wrote to the sandbox's result channel; not trusted"
    if not trusted:
        if returncode is not None and returncode < 0:
            return "failed", ""
        return "failed", (
            f"[sandbox] the program ended (exit status {returncode}) before the sandbox "
            "checked its tests: an early exit does not pass"
        )
    reason = trusted[-1]
    if reason == "failed memory":
        limit = f"{memory_mb:g} MiB" if memory_mb else "the host's"
        return "failed", (
            f"[sandbox] the program reached its memory limit ({limit} of address space, RLIMIT_AS)"
        )
    if reason == "failed exit":
        return "failed", (
            "[sandbox] the program raised SystemExit before its tests finished: "
            "an early exit does not pass"
        )
    if reason.startswith("failed test "):
        return "failed", f"[sandbox] test {reason.split()[-1]} of {num_tests} failed"
    if reason.startswith("error test "):
        return "error", f"[sandbox] test {reason.split()[-1]} does not compile"
    return "failed", ""


def run_program(
    code,
    timeout=10.0,
    memory_mb=1024,
    *,
    tests=None,
    max_processes=16,
    max_output_mb=16,
    tail_chars=4000,
    isolate_network=True,
    _python_guards=True,
):
    """Run one Python program in the sandbox, then its tests.

    Args:
        code: the program's source.
        timeout: wall-clock seconds (> 0) before the process group is killed.
            The CPU-time limit is `ceil(timeout) + 1` seconds.
        memory_mb: address-space limit (`RLIMIT_AS`) in MiB (> 0), or None
            for none.
        tests: test sources run by the harness after the program, each in
            the program's namespace (e.g. `["assert add(1, 2) == 3"]`); a
            string is one test. The program passes only if it ran to its
            end and every test ran and held. None: no tests (the program
            passes if it runs to its end).
        max_processes: extra tasks (processes and threads) the program may
            start (`RLIMIT_NPROC`; exact under root, where the program runs
            as a fresh uid; beyond what the user already runs otherwise).
        max_output_mb: limit on any file the program writes, its captured
            stdout/stderr included (`RLIMIT_FSIZE`).
        tail_chars: how many trailing characters of stdout/stderr to keep.
        isolate_network: also run in an empty network namespace when
            `unshare` works here (sockets are refused by the harness
            either way).
        _python_guards: False leaves out the harness's Python-level guards
            (the audit hook and patched functions), to test that the kernel
            layers hold on their own. Never for untrusted code.

    Returns:
        An `ExecutionResult`. Bad arguments raise `ValueError` before
        anything runs; whatever the program does, nothing is raised.

    Example:

    >>> run_program("while True: pass", timeout=1.0).status
    'timeout'
    >>> run_program("def f(x):\\n    return x", tests=["assert f(2) == 2"]).passed
    True
    """
    _check_arguments(code, timeout, memory_mb, max_processes, max_output_mb, tail_chars)
    tests = _check_tests(tests)
    start = time.monotonic()
    marker = uuid.uuid4().hex
    nonce = secrets.token_hex(16)
    base = None
    process = None
    result_read = result_write = None
    uid = None
    status, note, returncode = "error", "", None
    try:
        base = tempfile.mkdtemp(prefix="textdiff_sandbox_")
        workdir = os.path.join(base, "work")
        os.mkdir(workdir)
        program_path = os.path.join(workdir, "program.py")
        text, lines = _program_text(code, tests)
        with open(program_path, "w", encoding="utf-8") as f:
            f.write(text)
        runner_path = os.path.join(base, "runner.py")
        with open(runner_path, "w", encoding="utf-8") as f:
            f.write(_RUNNER)
        uid = _sandbox_uid()
        if uid is not None:
            try:
                os.chmod(base, 0o711)
                os.chown(workdir, uid, uid)
            except OSError:
                uid = None  # Run as root then: RLIMIT_NPROC does not bind root.
        result_read, result_write = os.pipe()
        read_roots = _read_roots(workdir)
        spec = {
            "nonce": nonce,
            "result_fd": result_write,
            "program_path": program_path,
            "workdir": workdir,
            "code": code,
            "tests": [{"source": test, "line": line} for test, line in zip(tests, lines)],
            "limits": {
                "memory": int(memory_mb * 2**20) if memory_mb else 0,
                "cpu": int(math.ceil(timeout)) + 1,
                "nproc": (int(max_processes) + 1 if uid is not None
                          else _task_counts(None)[0] + int(max_processes) + 4),
                "fsize": int(max_output_mb * 2**20),
            },
            "landlock": landlock_abi() > 0,
            "read_roots": read_roots,
            "write_roots": [workdir, os.devnull],
            "uid": uid,
            "guards": bool(_python_guards),
        }
        spec_path = os.path.join(base, "spec.json")
        descriptor = os.open(spec_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as f:
            json.dump(spec, f)
        command = [sys.executable, "-I", runner_path, spec_path]
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
                pass_fds=(result_write,),
            )
            os.close(result_write)
            result_write = None
            try:
                returncode = process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                status = "timeout"
                note = f"[sandbox] killed after the {timeout:g} s timeout"
        seconds = time.monotonic() - start
        _kill_everything(process, marker, uid)
        os.set_blocking(result_read, False)
        verdict = _read_all(result_read)
        if status != "timeout":
            if returncode == 0 and verdict == f"{nonce} passed {len(tests)}\n".encode():
                status = "passed"
            elif returncode in (-signal.SIGXCPU, -signal.SIGKILL) and seconds < timeout:
                # RLIMIT_CPU: SIGXCPU at the soft limit (SIGKILL at the hard one).
                status = "timeout"
                note = "[sandbox] killed by the CPU-time limit"
            else:
                status, note = _verdict_note(verdict, nonce, len(tests), returncode, memory_mb)
                if returncode is not None and returncode < 0:
                    try:
                        name = signal.Signals(-returncode).name
                    except ValueError:
                        name = str(-returncode)
                    note = (note + "\n" if note else "") + f"[sandbox] killed by signal {name}"
        stdout_tail = _tail(stdout_path, tail_chars)
        stderr_tail = _tail(stderr_path, tail_chars)
    except Exception as e:  # The sandbox's own failure: never raise.
        status = "error"
        seconds = time.monotonic() - start
        stdout_tail = ""
        stderr_tail = f"[sandbox] {type(e).__name__}: {e}"
    finally:
        if process is not None:
            _kill_everything(process, marker, uid)
            try:
                process.wait(timeout=5)
            except Exception:
                pass
        for fd in (result_read, result_write):
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
        if base is not None:
            shutil.rmtree(base, ignore_errors=True)
    if note:
        stderr_tail = (stderr_tail + "\n" + note).strip()[-tail_chars:] if tail_chars else ""
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

    This is the text of `program.py` in the sandbox (tracebacks point into
    it); the sandbox itself runs the tests separately (`check_correctness`).

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
    """Run `setup_code + program` in the sandbox, then each of `tests` (MBPP style).

    The harness runs the tests itself, after the program: the program passes
    only if every test ran and held.

    Example:

    >>> check_correctness("def add(a, b):\\n    return a + b",
    ...                   ["assert add(1, 2) == 3"]).passed
    True
    """
    code = "\n".join(piece for piece in (setup_code, program) if piece)
    return run_program(code, timeout=timeout, tests=_check_tests(tests), **kwargs)


def humaneval_program(prompt, completion, test, entry_point, split=False):
    """HumanEval's program: `prompt + completion + test + check(entry_point)`.

    With `split=True`, `(program, tests)` instead: `prompt + completion`, and
    its one test, `test + check(entry_point)`, for `run_program(..., tests=)`.
    """
    program, check = prompt + completion, test + "\n" + f"check({entry_point})\n"
    if split:
        return program, [check]
    return program + "\n" + check


def check_humaneval(prompt, completion, test, entry_point, timeout=10.0, **kwargs):
    """Run a HumanEval completion, then its `check` function as the test.

    Example:

    >>> check_humaneval("def inc(x):\\n", "    return x + 1\\n",
    ...                 "def check(f):\\n    assert f(1) == 2", "inc").passed
    True
    """
    program, tests = humaneval_program(prompt, completion, test, entry_point, split=True)
    return run_program(program, timeout=timeout, tests=tests, **kwargs)


def run_many(programs, timeout=10.0, memory_mb=1024, *, tests=None, max_workers=2, **kwargs):
    """Run several programs in parallel (a thread pool of `max_workers`).

    Args:
        programs: list of program sources.
        timeout, memory_mb, **kwargs: as for `run_program`, per program.
        tests: None, or one entry per program: its tests, as for
            `run_program` (None for a program without tests).
        max_workers: programs running at the same time (>= 1).

    Returns:
        A list of `ExecutionResult`, in the order of `programs`.

    Example:

    >>> [r.status for r in run_many(["pass", "raise SystemExit(1)"])]
    ['passed', 'failed']
    >>> [r.passed for r in run_many(["def f():\\n    return 1"] * 2,
    ...                             tests=[["assert f() == 1"], ["assert f() == 2"]])]
    [True, False]
    """
    if isinstance(programs, str):
        raise ValueError("`programs` must be a list of program sources, not a single string.")
    programs = list(programs)
    if tests is None:
        tests = [None] * len(programs)
    else:
        tests = list(tests)
        if len(tests) != len(programs):
            raise ValueError(
                f"`tests` must have one entry per program: got {len(tests)} for "
                f"{len(programs)} programs."
            )
    if isinstance(max_workers, bool) or not isinstance(max_workers, int) or max_workers < 1:
        raise ValueError(f"`max_workers` must be an integer >= 1; got {max_workers!r}.")
    limits = [kwargs.get(name, default) for name, default in
              (("max_processes", 16), ("max_output_mb", 16), ("tail_chars", 4000))]
    for i, code in enumerate(programs):
        _check_arguments(code, timeout, memory_mb, *limits)
        tests[i] = _check_tests(tests[i], f"tests[{i}]")
    if not programs:
        return []
    with concurrent.futures.ThreadPoolExecutor(max_workers=max_workers) as pool:
        futures = [
            pool.submit(run_program, code, timeout, memory_mb, tests=program_tests, **kwargs)
            for code, program_tests in zip(programs, tests)
        ]
        return [future.result() for future in futures]
