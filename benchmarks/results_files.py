"""What the CPU benchmarks share: the device line and the results files."""

import json
import os
import platform
import subprocess

RESULTS = "benchmarks/results"


def cpu_description():
    """E.g. "CPU (AMD EPYC 9B14, x86_64, 2 cores)": results name their CPU
    (machines differ: with Intel AMX, bfloat16 is fast; without, it is not)."""
    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            model = next(
                (line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), ""
            )
    except OSError:
        pass
    machine = platform.processor() or platform.machine()
    return f"CPU ({', '.join(p for p in (model, machine) if p)}, {os.cpu_count()} cores)"


def current_commit():
    """The checkout's short commit, with `+` if tracked files other than
    results have uncommitted changes: the code a result was measured with,
    which results files record beside each row (a later commit may change
    what they measure)."""
    def git(*a):
        try:
            return subprocess.run(["git", *a], capture_output=True, text=True,
                                  cwd=os.path.dirname(os.path.abspath(__file__))).stdout.strip()
        except OSError:  # No git (a lent GPU machine's copy of the tree).
            return ""
    changed = git("status", "--porcelain", "-uno", "--", ":/", ":(top,exclude)benchmarks/results")
    return (git("rev-parse", "--short", "HEAD") or "unknown") + ("+" if changed else "")


def write_results(name, args, rows, lines):
    """Write `RESULTS/<name>.json` (the arguments and rows) and `<name>.md`
    (the markdown `lines`), and print the markdown."""
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, name + ".json"), "w") as f:
        json.dump({"args": vars(args), "rows": rows}, f, indent=2)
    with open(os.path.join(RESULTS, name + ".md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))
