"""Whole-process start-up of the CLI's quick commands (issue #18: `tada --help` ≤ 0.5 s).

``python benchmarks/startup.py [--repeat 5]``: each command run as its own process
(``python -m tada ...``) with Python's bytecode cache on (after one warm-up run), best of N
wall times, printed as a Markdown table.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = [["--help"], ["--version"], ["datasets"], ["methods"], ["inspect", str(ROOT / "examples/adapters/domain")]]


#: As a user's machine runs it: Python caches compiled modules (this sandbox sets
#: PYTHONDONTWRITEBYTECODE, which makes every start compile tada's sources again); one warm-up run
#: per command writes the cache.
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def best_of(args: list[str], repeat: int) -> float:
    subprocess.run([sys.executable, "-m", "tada", *args], check=True, capture_output=True, env=ENV)  # warm-up
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "tada", *args], check=True, capture_output=True, env=ENV)
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print(f"| command | best of {args.repeat} (s) |\n|---|---|")
    for cmd in COMMANDS:
        shown = " ".join(c if not c.startswith(str(ROOT)) else Path(c).relative_to(ROOT).as_posix() for c in cmd)
        print(f"| `tada {shown}` | {best_of(cmd, args.repeat):.2f} |")


if __name__ == "__main__":
    main()
