"""Whole-process start-up of the CLI's quick commands (issue #18: `tada --help` ≤ 0.5 s).

``python benchmarks/startup.py [--repeat 5]``: each command run as its own process
(``python -m tada ...``), best of N wall times, printed as a Markdown table.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = [["--help"], ["--version"], ["datasets"], ["methods"], ["inspect", str(ROOT / "examples/adapters/domain")]]


def best_of(args: list[str], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "tada", *args], check=True, capture_output=True)
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
