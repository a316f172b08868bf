"""Create MLServer's virtual environment from requirements.txt, once: the variant's `[variant.local] build`.

Idempotent: the venv holds a stamp with the sha256 of the requirements file and the interpreter version; when
it matches, nothing runs. Otherwise the venv is recreated from scratch (no stale packages) and stamped last,
so an interrupted install is redone on the next call.

    python external/mlserver_onnx/build_venv.py [--venv build/venvs/mlserver_onnx]
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import venv
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]
REQUIREMENTS = HERE / "requirements.txt"
DEFAULT_VENV = REPO_ROOT / "build" / "venvs" / "mlserver_onnx"
STAMP_NAME = ".requirements.sha256"


def wanted_stamp(requirements: Path = REQUIREMENTS) -> str:
    digest = hashlib.sha256(requirements.read_bytes()).hexdigest()
    return f"{digest} python{sys.version_info.major}.{sys.version_info.minor}\n"


def is_current(venv_dir: Path, requirements: Path = REQUIREMENTS) -> bool:
    stamp = venv_dir / STAMP_NAME
    return stamp.is_file() and stamp.read_text() == wanted_stamp(requirements)


def build(venv_dir: Path, requirements: Path = REQUIREMENTS) -> bool:
    """Make ``venv_dir`` match ``requirements``; True when it had to be (re)built."""
    if is_current(venv_dir, requirements):
        return False
    venv.EnvBuilder(clear=True, with_pip=True).create(venv_dir)
    python = venv_dir / "bin" / "python"
    pip = [str(python), "-m", "pip", "--disable-pip-version-check", "--no-input", "--quiet"]
    subprocess.run([*pip, "install", "-r", str(requirements)], check=True)
    (venv_dir / STAMP_NAME).write_text(wanted_stamp(requirements))
    return True


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--venv", type=Path, default=DEFAULT_VENV)
    args = parser.parse_args()
    built = build(args.venv.resolve())
    print(f"{args.venv}: {'built from' if built else 'up to date with'} {REQUIREMENTS.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
