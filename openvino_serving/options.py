"""The two ways OpenVINO could serve the classifier, checked against the torch reference and timed. The
service never imports this module (it needs torch, which the image does not have).

  (a) the served one: the fused ONNX graph (``fused.portable.onnx``), preprocessing in its operators;
  (b) the plain classifier export (``classifier.onnx``) with OpenVINO's PrePostProcessor in front: u8 NHWC ->
      f32 -> shorter-side resize + centre crop -> mean/scale -> NCHW, and a softmax after. The resize is
      Interpolate-11 ``bilinear_pillow`` (antialiased, Pillow's filter, which torch's ``antialias=True``
      follows). PrePostProcessor's own ``resize``/``crop`` take fixed sizes, and the shorter-side size and the
      crop offset depend on each image's shape, so they are one ``custom`` step of shape arithmetic.

  taskset -c 1 .venv/bin/python -m openvino_serving.options --image images/photo_medium.jpg --runs 150
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import openvino as ov
import openvino.opset13 as ops
from openvino.preprocess import PrePostProcessor
from PIL import Image

from artifact_contract import CLASSIFIER_FILE, PORTABLE_FILE
from model_zoo.card import ModelCard, Preprocessing
from openvino_serving.predictor import OpenVinoPredictor, compile_config
from openvino_serving.settings import OpenVinoServingSettings

ARTIFACTS = Path("build/artifacts")
Classify = Callable[[np.ndarray], np.ndarray]  # one uint8 HWC image -> [1, classes]


def _int64(values: list[int] | int) -> ov.Node:
    return ops.constant(np.array(values, dtype=np.int64))


def _resize_and_crop(spec: Preprocessing) -> Callable[[ov.Output], ov.Output]:
    def step(image: ov.Output) -> ov.Output:  # f32 [N, H, W, 3]
        sides = ops.gather(ops.shape_of(image, "i64"), _int64([1, 2]), _int64(0))
        shorter = ops.reduce_min(sides, _int64(0), keep_dims=True)
        # The shorter side becomes resize_size, the longer one resize_size * longer // shorter (truncated).
        longer = ops.divide(ops.multiply(sides, _int64(spec.resize_size)), shorter)
        resized_sides = ops.select(ops.equal(sides, shorter), _int64([spec.resize_size] * 2), longer)
        resized = ops.interpolate(
            image, resized_sides, mode="bilinear_pillow", shape_calculation_mode="sizes", axes=_int64([1, 2])
        )
        margins = ops.convert(ops.subtract(resized_sides, _int64(spec.crop_size)), "f32")
        half = ops.divide(margins, ops.constant(np.float32(2.0)))
        start = ops.convert(ops.round(half, "half_to_even"), "i64")  # as torchvision's round()
        stop = ops.add(start, _int64(spec.crop_size))
        return ops.slice(resized, start, stop, _int64([1, 1]), _int64([1, 2])).output(0)

    return step


def compile_option_b(core: ov.Core, classifier: Path, spec: Preprocessing, threads: int) -> ov.CompiledModel:
    ppp = PrePostProcessor(core.read_model(classifier))
    tensor = ppp.input().tensor()
    tensor.set_element_type(ov.Type.u8).set_layout(ov.Layout("NHWC")).set_shape([-1, -1, -1, 3])
    ppp.input().model().set_layout(ov.Layout("NCHW"))
    (
        ppp.input()
        .preprocess()
        .convert_element_type(ov.Type.f32)
        .custom(_resize_and_crop(spec))
        .mean([255.0 * m for m in spec.mean])
        .scale([255.0 * s for s in spec.std])
    )
    ppp.output().postprocess().custom(lambda logits: ops.softmax(logits, 1).output(0))
    return core.compile_model(ppp.build(), "CPU", compile_config(threads))


def torch_reference(card: ModelCard) -> Classify:
    import torch

    from model_zoo.checkpoint import load_classifier
    from model_zoo.preprocess import preprocess_image

    torch.set_num_threads(1)
    model, _ = load_classifier()

    def classify(image: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return torch.softmax(model(preprocess_image(image, card.preprocessing)[None]), -1).numpy()

    return classify


def parity(reference: Classify, candidate: Classify, images: list[np.ndarray]) -> dict[str, float]:
    expected = np.concatenate([reference(image) for image in images])
    found = np.concatenate([candidate(image) for image in images])
    return {
        "images": len(images),
        "top1_agreement": float((expected.argmax(1) == found.argmax(1)).mean()),
        "max_abs_delta": float(np.abs(expected.astype(np.float64) - found).max()),
    }


def _rgb(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.array(image.convert("RGB"))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--image", type=Path, default=Path("images/photo_medium.jpg"))
    parser.add_argument("--runs", type=int, default=150, help="timed calls per option, alternating")
    parser.add_argument("--digits", type=Path, default=Path("images/digits"), help="held-out set for parity")
    parser.add_argument("--no-parity", action="store_true")
    args = parser.parse_args()

    settings = OpenVinoServingSettings(openvino_model=ARTIFACTS / PORTABLE_FILE, threads=1)
    served = OpenVinoPredictor(settings)
    card = served.load().card
    request_b = compile_option_b(
        ov.Core(), ARTIFACTS / CLASSIFIER_FILE, card.preprocessing, 1
    ).create_infer_request()
    options: dict[str, Classify] = {
        "a_fused_portable_onnx": lambda image: served.predict([image]).probabilities,
        "b_classifier_prepostprocessor": lambda image: request_b.infer([image[np.newaxis]])[0],
    }
    report: dict[str, object] = {"openvino": ov.get_version(), "image": str(args.image)}
    if not args.no_parity:
        entries = json.loads((args.digits / "manifest.json").read_text())["images"]
        digits = [_rgb(args.digits / entry["file"]) for entry in entries]
        photos = [_rgb(path) for path in sorted(Path("images").glob("photo_*.jpg"))]
        reference = torch_reference(card)
        report["parity"] = {
            name: {"heldout": parity(reference, run, digits), "photos": parity(reference, run, photos)}
            for name, run in options.items()
        }
    image = _rgb(args.image)
    timings: dict[str, list[float]] = {name: [] for name in options}
    for run in options.values():
        for _ in range(5):
            run(image)
    for index in range(args.runs):
        order = list(options) if index % 2 == 0 else list(reversed(options))
        for name in order:
            started = time.perf_counter()
            options[name](image)
            timings[name].append((time.perf_counter() - started) * 1000.0)
    report["median_ms"] = {name: round(statistics.median(values), 2) for name, values in timings.items()}
    report["p10_p90_ms"] = {
        name: [round(q, 2) for q in statistics.quantiles(values, n=10)[::8]]
        for name, values in timings.items()
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
