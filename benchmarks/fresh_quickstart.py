"""The README's main command on a fresh clone and venv, timed.

Clones this repository's HEAD into `--workdir`, makes a new venv there, and
times the README's two halves of `pip install -e . && textdiff quickstart`:
the install (and the venv's size on disk) and the quickstart. Each stage's
result is cached in `--workdir` (`install.json`, `quickstart.json`), so an
interrupted run resumes; delete the folder to measure afresh. Writes
`benchmarks/results/quickstart-cpu.{md,json}`: the quickstart's metrics,
its three printed examples, the two times and the CPU.

    python benchmarks/fresh_quickstart.py --workdir /tmp/fresh

The install time depends on pip's cache and the registry: a first install
on a new machine downloads about 3 GB.
"""

import argparse
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from results_files import cpu_description  # noqa: E402
from results_files import write_results  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def timed(command, cwd, log):
    """Run `command` (a shell line), its output to `log`; its seconds."""
    start = time.time()
    with open(log, "w") as f:
        subprocess.run(["bash", "-c", command], cwd=cwd, stdout=f, stderr=subprocess.STDOUT, check=True)
    return round(time.time() - start, 1)


def stage(path, work):
    """The cached result at `path`, or `work()`'s, saved there."""
    if not os.path.exists(path):
        with open(path, "w") as f:
            json.dump(work(), f, indent=2)
    with open(path) as f:
        return json.load(f)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", default="/tmp/textdiff-fresh", help="clone, venv and stage results")
    args = parser.parse_args()
    work = os.path.abspath(args.workdir)
    repo, venv = os.path.join(work, "repo"), os.path.join(work, "venv")
    os.makedirs(work, exist_ok=True)
    activate = f". {venv}/bin/activate"

    def install():
        subprocess.run(["git", "clone", "-q", ROOT, repo], check=True)
        subprocess.run([sys.executable, "-m", "venv", venv], check=True)
        seconds = timed(f"{activate} && pip install -q -e .", repo, os.path.join(work, "install.log"))
        size = subprocess.run(["du", "-sh", venv], capture_output=True, text=True).stdout.split()[0]
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=repo,
                                capture_output=True, text=True).stdout.strip()
        return {"install_seconds": seconds, "venv_size": size, "commit": commit}

    def quickstart():
        seconds = timed(f"{activate} && textdiff quickstart", repo, os.path.join(work, "quickstart.log"))
        with open(os.path.join(repo, "textdiff_runs", "quickstart", "metrics.json")) as f:
            return {"quickstart_seconds": seconds, "metrics": json.load(f)}

    installed = stage(os.path.join(work, "install.json"), install)
    ran = stage(os.path.join(work, "quickstart.json"), quickstart)
    metrics = ran["metrics"]
    device = cpu_description()
    row = {"device": device, **installed, "quickstart_seconds": ran["quickstart_seconds"], **metrics}
    lines = [
        "# `pip install -e . && textdiff quickstart` on a fresh clone and venv",
        "",
        f"Device: {device}; backend {metrics['backend']}; commit {installed['commit']}.",
        f"Command: `python benchmarks/fresh_quickstart.py --workdir {args.workdir}`.",
        "",
        "| stage | seconds |",
        "|---|---|",
        f"| `pip install -e .` (venv {installed['venv_size']}) | {installed['install_seconds']:.0f} |",
        f"| `textdiff quickstart` | {ran['quickstart_seconds']:.0f} |",
        f"| of which training ({metrics['train_steps']} steps; stopped by the time budget: "
        f"{metrics['stopped_by_time_budget']}) | {metrics['train_seconds']:.0f} |",
        "",
        f"Held-out numbers: {metrics['held_out_numbers']} (never seen in training).",
        "",
        "| model | exact match |",
        "|---|---|",
        f"| diffusion model ({metrics['parameters']:,} parameters) | {metrics['exact_match']:.1f}% |",
        f"| copy the prompt (baseline) | {metrics['baseline_copy_prompt_exact_match']:.1f}% |",
        f"| closest training spelling (baseline) | {metrics['baseline_closest_training_exact_match']:.1f}% |",
        "",
        f"{metrics['wrong']} of {metrics['held_out_numbers']} wrong. The three examples it printed:",
        "",
    ]
    for example in metrics["examples"]:
        verdict = "right" if example["answer"] == example["reference"] else "WRONG"
        lines.append(f"- {example['prompt']!r} -> {example['answer']!r} (reference "
                     f"{example['reference']!r}, {verdict})")
    write_results("quickstart-cpu", args, [row], lines)


if __name__ == "__main__":
    main()
