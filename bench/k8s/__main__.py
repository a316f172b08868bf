"""``python -m bench.k8s [--check]``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from bench.k8s.constants import OUTPUT_DIR
from bench.k8s.files import differences, write


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.k8s",
        description="Kubernetes manifests for the lab, generated from the registry and compose.yaml",
    )
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 when the files differ")
    parser.add_argument("--output", type=Path, default=OUTPUT_DIR, help="default: deploy/k8s")
    options = parser.parse_args(argv)
    if options.check:
        problems = differences(options.output)
        for problem in problems:
            print(problem, file=sys.stderr)
        if problems:
            print("run `python -m bench.k8s` to regenerate deploy/k8s", file=sys.stderr)
        return 1 if problems else 0
    written = write(options.output)
    print(f"{len(written)} files under {options.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
