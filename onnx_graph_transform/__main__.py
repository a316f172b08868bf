"""CLI: ``build --out DIR [options]`` (the whole pipeline), ``summary --out DIR`` (print the verdicts) and
``speed --out DIR`` (time the fp32 artifacts against the torch reference)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from artifact_contract import MANIFEST_FILE, VALIDATION_FILE
from artifact_contract.manifest import Manifest
from model_zoo.card import card_path_for
from model_zoo.checkpoint import load_classifier
from onnx_graph_transform.build import DEFAULT_CHECKPOINT, DEFAULT_IMAGES, BuildRequest, build
from onnx_graph_transform.optimize import DEFAULT_LEVEL, LEVELS
from onnx_graph_transform.speed import DEFAULT_PHOTO, measure_speed, render_speed, speed_inputs
from onnx_graph_transform.summary import render_summary


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m onnx_graph_transform", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    build_command = commands.add_parser("build", help="export, fuse, optimize, [quantize,] validate")
    build_command.add_argument(
        "--out", type=Path, required=True, help="artifact directory (replaced when done)"
    )
    build_command.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT, help="torch state_dict")
    build_command.add_argument(
        "--card", type=Path, default=None, help="model card (default: beside the checkpoint)"
    )
    build_command.add_argument(
        "--images", type=Path, default=DEFAULT_IMAGES, help="held-out images + manifest.json"
    )
    build_command.add_argument(
        "--quantize", action="store_true", help="also build and gate the int8 artifact"
    )
    build_command.add_argument(
        "--opt-level",
        choices=sorted(LEVELS),
        default=DEFAULT_LEVEL,
        help=f"ORT level of the served artifact (default {DEFAULT_LEVEL}); the portable one: extended",
    )
    summary_command = commands.add_parser(
        "summary", help="print the validation summary; exit 1 if fp32 failed"
    )
    summary_command.add_argument("--out", type=Path, required=True)
    speed_command = commands.add_parser(
        "speed", help="median ms of the served and portable artifacts vs torch (1 thread, interleaved)"
    )
    speed_command.add_argument("--out", type=Path, required=True)
    speed_command.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT)
    speed_command.add_argument("--card", type=Path, default=None)
    speed_command.add_argument("--photo", type=Path, default=DEFAULT_PHOTO)
    speed_command.add_argument("--runs", type=int, default=40)
    speed_command.add_argument("--core", type=int, default=None, help="pin this process to one CPU core")
    return parser


def _speed(arguments: argparse.Namespace) -> int:
    model, card = load_classifier(arguments.checkpoint, arguments.card or card_path_for(arguments.checkpoint))
    inputs = speed_inputs(arguments.photo)
    medians = measure_speed(
        arguments.out, model.eval(), card.preprocessing, inputs, arguments.runs, arguments.core
    )
    print(render_speed(medians, arguments.runs))
    return 0


def main(argv: list[str] | None = None) -> int:
    arguments = _parser().parse_args(argv)
    if arguments.command == "build":
        request = BuildRequest(
            out=arguments.out,
            checkpoint=arguments.checkpoint,
            card=arguments.card,
            images=arguments.images,
            quantize=arguments.quantize,
            level=arguments.opt_level,
        )
        manifest = build(request)
        print(render_summary(manifest, json.loads((arguments.out / VALIDATION_FILE).read_text())))
        return 0 if manifest.validation.fp32["passed"] else 1
    if arguments.command == "speed":
        return _speed(arguments)
    manifest_path = arguments.out / MANIFEST_FILE
    if not manifest_path.exists():
        print(f"no {MANIFEST_FILE} in {arguments.out}: run the build first", file=sys.stderr)
        return 2
    manifest = Manifest.read(arguments.out)
    print(render_summary(manifest, json.loads((arguments.out / VALIDATION_FILE).read_text())))
    return 0 if manifest.validation.fp32["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
