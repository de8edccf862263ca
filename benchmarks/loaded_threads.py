"""Entry-wise merges on a loaded machine (issue #18): default threads against one thread.

``python benchmarks/loaded_threads.py [--method ties] [--repeat 3] [--busy N]``: starts N busy
processes (default: one per core this process may use; each spins in pure Python), then runs
``tada merge --method M`` on the shipped example adapters as its own process, once with
``--threads 1`` and once with the default (``OMP_NUM_THREADS`` unset: the free cores,
:func:`tada._util.free_cores`), alternating, best of ``--repeat``; then the same on the idle
machine. Prints a Markdown table; the default threads chosen are printed by ``tada --threads``'s
rule at each point.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUSY = "import time\nend = time.time() + 3600\nwhile time.time() < end:\n    pass\n"


def merge_time(method: str, threads: str | None, out: Path) -> float:
    ex = ROOT / "examples" / "adapters"
    cmd = [sys.executable, "-m", "tada", *(["--threads", threads] if threads else []), "merge", "--task",
           str(ex / "task-format"), "--domain", str(ex / "domain"), "--method", method, "--out", str(out),
           "--force", "--quiet"]
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}  # the default is what's measured
    t = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, env=env)
    return time.perf_counter() - t


def measure(method: str, repeat: int, out: Path) -> dict[str, float]:
    times: dict[str, list[float]] = {"1": [], "default": []}
    for _ in range(repeat):
        for key in times:
            times[key].append(merge_time(method, "1" if key == "1" else None, out))
    return {k: min(v) for k, v in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", default="ties")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--busy", type=int, default=len(os.sched_getaffinity(0)))
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "merged"
        busy = [subprocess.Popen([sys.executable, "-c", BUSY]) for _ in range(args.busy)]
        try:
            time.sleep(60)  # a sustained load: the 1-minute load average shows it (tada._util.free_cores)
            rows.append((f"{args.busy} busy processes", measure(args.method, args.repeat, out)))
        finally:
            for p in busy:
                p.kill()
        time.sleep(2)
        rows.append(("idle", measure(args.method, args.repeat, out)))
    print(f"`tada merge --method {args.method}` on examples/adapters (task-format + domain), "
          f"{len(os.sched_getaffinity(0))} cores, best of {args.repeat} (s)\n")
    print("| machine | --threads 1 | default threads |\n|---|---|---|")
    for name, t in rows:
        print(f"| {name} | {t['1']:.2f} | {t['default']:.2f} |")


if __name__ == "__main__":
    main()
