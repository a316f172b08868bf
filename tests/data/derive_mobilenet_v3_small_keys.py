"""Writes mobilenet_v3_small_state_dict_keys.json: the state_dict torchvision builds for mobilenet_v3_small.

Derived by hand from torchvision's source (torchvision/models/mobilenetv3.py and ops/misc.py),
NOT from model_zoo.mobilenet_v3, so the key test compares two independent readings. What the source says:

- ``features`` is a Sequential: [0] stem Conv2dNormActivation(3 -> 16, k3, s2, Hardswish); [1..11] one
  InvertedResidual per row of the "small" table below; [12] Conv2dNormActivation(96 -> 576, k1, Hardswish).
- Conv2dNormActivation is Sequential(Conv2d(bias=False), BatchNorm2d, activation): keys ``.0.weight`` and
  ``.1.{weight,bias,running_mean,running_var,num_batches_tracked}``; the activation has no state.
- InvertedResidual keeps its layers in ``block``: [expand 1x1 if expanded != input] [depthwise kxk,
  groups=expanded] [SqueezeExcitation if use_se] [project 1x1, no activation].
  SqueezeExcitation(expanded, _make_divisible(expanded // 4, 8)) holds ``fc1`` (Conv2d
  expanded -> squeeze, 1x1, with bias) and ``fc2`` (squeeze -> expanded).
- ``classifier`` = Sequential(Linear(576, 1024), Hardswish, Dropout, Linear(1024, num_classes)): keys at 0, 3.
torchvision's published parameter count (1000 classes) is 2,542,856; the script asserts it.

Run: python tests/data/derive_mobilenet_v3_small_keys.py
"""

import json
from pathlib import Path

# (input, kernel, expanded, out, use_se, activation, stride) as in torchvision's _mobilenet_v3_conf, small.
SMALL_TABLE = [
    (16, 3, 16, 16, True, "RE", 2),
    (16, 3, 72, 24, False, "RE", 2),
    (24, 3, 88, 24, False, "RE", 1),
    (24, 5, 96, 40, True, "HS", 2),
    (40, 5, 240, 40, True, "HS", 1),
    (40, 5, 240, 40, True, "HS", 1),
    (40, 5, 120, 48, True, "HS", 1),
    (48, 5, 144, 48, True, "HS", 1),
    (48, 5, 288, 96, True, "HS", 2),
    (96, 5, 576, 96, True, "HS", 1),
    (96, 5, 576, 96, True, "HS", 1),
]
NUM_CLASSES = 1000
TORCHVISION_PARAMETER_COUNT = 2_542_856


def divisible_by_8(value: float) -> int:
    new = max(8, int(value + 4) // 8 * 8)
    return new + 8 if new < 0.9 * value else new


def conv_norm(prefix: str, cin: int, cout: int, kernel: int, groups: int = 1) -> list[tuple[str, list[int]]]:
    return [
        (f"{prefix}.0.weight", [cout, cin // groups, kernel, kernel]),
        (f"{prefix}.1.weight", [cout]),
        (f"{prefix}.1.bias", [cout]),
        (f"{prefix}.1.running_mean", [cout]),
        (f"{prefix}.1.running_var", [cout]),
        (f"{prefix}.1.num_batches_tracked", []),
    ]


def derive() -> list[tuple[str, list[int]]]:
    keys = conv_norm("features.0", 3, 16, 3)
    for index, (cin, kernel, expanded, cout, use_se, _act, _stride) in enumerate(SMALL_TABLE, start=1):
        position = 0
        prefix = f"features.{index}.block"
        if expanded != cin:
            keys += conv_norm(f"{prefix}.{position}", cin, expanded, 1)
            position += 1
        keys += conv_norm(f"{prefix}.{position}", expanded, expanded, kernel, groups=expanded)
        position += 1
        if use_se:
            squeeze = divisible_by_8(expanded // 4)
            keys += [
                (f"{prefix}.{position}.fc1.weight", [squeeze, expanded, 1, 1]),
                (f"{prefix}.{position}.fc1.bias", [squeeze]),
                (f"{prefix}.{position}.fc2.weight", [expanded, squeeze, 1, 1]),
                (f"{prefix}.{position}.fc2.bias", [expanded]),
            ]
            position += 1
        keys += conv_norm(f"{prefix}.{position}", expanded, cout, 1)
    keys += conv_norm("features.12", 96, 576, 1)
    keys += [
        ("classifier.0.weight", [1024, 576]),
        ("classifier.0.bias", [1024]),
        ("classifier.3.weight", [NUM_CLASSES, 1024]),
        ("classifier.3.bias", [NUM_CLASSES]),
    ]
    return keys


def parameter_count(keys: list[tuple[str, list[int]]]) -> int:
    buffers = ("running_mean", "running_var", "num_batches_tracked")
    total = 0
    for name, shape in keys:
        if not name.endswith(buffers):
            size = 1
            for dim in shape:
                size *= dim
            total += size
    return total


if __name__ == "__main__":
    derived = derive()
    count = parameter_count(derived)
    assert count == TORCHVISION_PARAMETER_COUNT, count
    document = {
        "source": "torchvision mobilenet_v3_small(num_classes=1000), see derive_mobilenet_v3_small_keys.py",
        "num_classes": NUM_CLASSES,
        "parameter_count": count,
        "state_dict": [{"key": name, "shape": shape} for name, shape in derived],
    }
    out = Path(__file__).with_name("mobilenet_v3_small_state_dict_keys.json")
    out.write_text(json.dumps(document, indent=1) + "\n")
    print(f"{len(derived)} entries, {count:,} parameters -> {out}")
