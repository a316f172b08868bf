"""The human-readable validation summary printed after a build and by ``summary``."""

from __future__ import annotations

from typing import Any

from artifact_contract.manifest import Manifest


def _mb(size: int) -> str:
    return f"{size / 1e6:.2f} MB"


def render_summary(manifest: Manifest, validation: dict[str, Any]) -> str:
    fp32 = validation["fp32"]
    heldout = fp32["heldout"]
    gate = fp32["gate"]
    worst_synthetic = max(case["max_abs_delta"] for case in fp32["synthetic"])
    lines = [
        f"model {manifest.model.name} ({manifest.model.architecture}), "
        f"built in {manifest.build_seconds:.1f} s, "
        f"ORT optimization level {manifest.optimization['level']}",
        f"fp32 {fp32['artifact']}: {'PASSED' if gate['passed'] else 'FAILED'} ({gate['rule']})",
        f"  held-out: {heldout['images']} images, top-1 agreement {heldout['top1_agreement']:.2%}, "
        f"max |dp| {heldout['max_abs_delta']:.2e}, accuracy torch {heldout['reference_accuracy']:.2%} / "
        f"onnx {heldout['candidate_accuracy']:.2%}",
        f"  synthetic sizes: {len(fp32['synthetic'])} cases, "
        f"top-1 agreement {min(case['top1_agreement'] for case in fp32['synthetic']):.2%}, "
        f"max |dp| {worst_synthetic:.2e}",
    ]
    portable = validation.get("portable")
    if portable is not None:
        lines.append(
            f"portable {portable['artifact']}: {'PASSED' if portable['gate']['passed'] else 'FAILED'}: "
            f"held-out top-1 agreement {portable['heldout']['top1_agreement']:.2%}, "
            f"max |dp| over all cases {portable['gate']['max_abs_delta']:.2e}"
        )
    int8 = validation.get("int8")
    if int8 is None:
        lines.append("int8: not built (use --quantize)")
    else:
        verdict = int8["gate"]
        compared = int8["heldout_vs_fp32"]
        lines.append(
            f"int8 {int8['artifact']}: {verdict['status'].upper()} ({verdict['rule']}): accuracy "
            f"{verdict['accuracy']:.2%} vs required {verdict['required_accuracy']:.2%}, "
            f"agreement with fp32 {compared['top1_agreement']:.2%}, "
            f"max |dp| vs fp32 {compared['max_abs_delta']:.2e}"
        )
    steps = ", ".join(f"{step} {seconds:.1f} s" for step, seconds in manifest.step_seconds.items())
    lines.append(f"build steps: {steps}")
    optimization = manifest.optimization
    lines.append(f"nodes: fused {optimization['nodes_before']} -> optimized {optimization['nodes_after']}")
    for name, artifact in manifest.artifacts.items():
        status = f" [{artifact.status}]" if artifact.status is not None else ""
        level = f" level {artifact.level}" if artifact.level else ""
        specific = ", specific to this CPU" if artifact.hardware_specific else ""
        size = _mb(artifact.bytes)
        lines.append(f"  {name:28s} {size:>10s} {artifact.nodes:4d} nodes{level}{specific}{status}")
    serve = manifest.serve
    lines.append(f"serve: fp32={serve.fp32} portable={serve.portable} int8={serve.int8}")
    return "\n".join(lines)
