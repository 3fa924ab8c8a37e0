"""What the CPU benchmarks share: the device line and the results files."""

import json
import os
import platform

RESULTS = "benchmarks/results"


def cpu_description():
    """E.g. "CPU (x86_64, 2 cores)"."""
    return f"CPU ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)"


def write_results(name, args, rows, lines):
    """Write `RESULTS/<name>.json` (the arguments and rows) and `<name>.md`
    (the markdown `lines`), and print the markdown."""
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, name + ".json"), "w") as f:
        json.dump({"args": vars(args), "rows": rows}, f, indent=2)
    with open(os.path.join(RESULTS, name + ".md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))
