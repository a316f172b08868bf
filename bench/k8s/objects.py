"""The labels, metadata and security contexts every generated object shares."""

from __future__ import annotations

from typing import Any

from bench.k8s.constants import NAMESPACE, PART_OF, VARIANT_LABEL


def labels(name: str, component: str, variant: str | None = None) -> dict[str, str]:
    found = {
        "app.kubernetes.io/name": name,
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/part-of": PART_OF,
    }
    if variant is not None:
        found[VARIANT_LABEL] = variant
    return found


def metadata(name: str, component: str, variant: str | None = None) -> dict[str, Any]:
    return {"name": name, "namespace": NAMESPACE, "labels": labels(name, component, variant)}


def container_security() -> dict[str, Any]:
    return {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}


def pod_security(uid: int) -> dict[str, Any]:
    return {
        "runAsNonRoot": True,
        "runAsUser": uid,
        "runAsGroup": uid,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
