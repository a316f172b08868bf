"""A serving variant's Deployment, Service and HorizontalPodAutoscaler."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.k8s.compose import Compose, ManifestError, image_uid, seconds
from bench.k8s.constants import (
    DEFAULT_START_PERIOD_S,
    HEALTH_PATH,
    HPA_CPU_UTILIZATION,
    HPA_MAX_REPLICAS,
    HPA_MIN_REPLICAS,
    IMAGE_APP_DIR,
    LIVENESS,
    READINESS,
    STARTUP_PERIOD_S,
)
from bench.k8s.objects import container_security, labels, metadata, pod_security
from bench.registry import Variant


def deployable(variants: Sequence[Variant], compose: Compose) -> list[Variant]:
    """The variants compose runs from an image, in registry order."""
    return [v for v in variants if v.compose_service in compose.services and compose.image(v.compose_service)]


def _files_under(variant: Variant, folder: Path) -> set[Path]:
    return {path for path in variant.artifacts if folder in path.parents}


def _artifact_source(
    variant: Variant, folder: Path, variants: Sequence[Variant], compose: Compose
) -> Variant:
    """The first variant whose image holds every file of ``variant``'s artifacts that lives in ``folder``."""
    needed = _files_under(variant, folder)
    for candidate in variants:
        image = candidate.image
        if image is not None and candidate.compose_service in compose.services and needed <= set(image.files):
            return candidate
    raise ManifestError(f"{variant.name}: no image carries {sorted(map(str, needed))} for its {folder} mount")


def serving_manifests(variant: Variant, variants: Sequence[Variant], compose: Compose) -> dict[str, Any]:
    """Deployment, Service and HorizontalPodAutoscaler of one variant."""
    service_name = str(variant.compose_service)
    service = compose.service(service_name)
    port = compose.container_port(service_name)
    environment = {**dict(sorted(variant.settings.items())), **compose.environment(service_name)}
    resources = compose.limits(service_name)
    if "cpu" not in resources or "memory" not in resources:
        raise ManifestError(f"compose service {service_name}: set deploy.resources.limits cpus and memory")
    start_period = seconds(
        (service.get("healthcheck") or {}).get("start_period", f"{DEFAULT_START_PERIOD_S}s")
    )
    uid = image_uid(compose.dockerfile(service_name))
    volumes: list[dict[str, Any]] = []
    mounts: list[dict[str, Any]] = []
    init_containers: list[dict[str, Any]] = []
    if service.get("read_only"):
        volumes.append({"name": "tmp", "emptyDir": {"medium": "Memory"}})
        mounts.append({"name": "tmp", "mountPath": "/tmp"})
    for index, (folder, target) in enumerate(compose.bind_mounts(service_name)):
        source = _artifact_source(variant, folder, variants, compose)
        volume = f"files-{index}"
        volumes.append({"name": volume, "emptyDir": {}})
        mounts.append({"name": volume, "mountPath": target, "readOnly": True})
        init_containers.append(
            {
                "name": f"copy-{index}",
                "image": compose.image(str(source.compose_service)),
                "imagePullPolicy": "IfNotPresent",
                "command": ["cp", "-R", f"{IMAGE_APP_DIR / folder}/.", target],
                "resources": {"requests": dict(resources), "limits": dict(resources)},
                "securityContext": {**container_security(), "readOnlyRootFilesystem": True},
                "volumeMounts": [{"name": volume, "mountPath": target}],
            }
        )
    container: dict[str, Any] = {
        "name": "serving",
        "image": compose.image(service_name),
        "imagePullPolicy": "IfNotPresent",
        "ports": [{"name": "http", "containerPort": port}],
        "env": [{"name": key, "value": value} for key, value in environment.items()],
        "resources": {"requests": dict(resources), "limits": dict(resources)},
        "startupProbe": {
            "httpGet": {"path": HEALTH_PATH, "port": "http"},
            "periodSeconds": STARTUP_PERIOD_S,
            "timeoutSeconds": 3,
            "failureThreshold": max(1, -(-start_period // STARTUP_PERIOD_S)),
        },
        "livenessProbe": {"httpGet": {"path": HEALTH_PATH, "port": "http"}, **LIVENESS},
        "readinessProbe": {"httpGet": {"path": variant.ready_path, "port": "http"}, **READINESS},
        "securityContext": {
            **container_security(),
            "readOnlyRootFilesystem": bool(service.get("read_only")),
        },
    }
    if mounts:
        container["volumeMounts"] = mounts
    pod: dict[str, Any] = {
        "automountServiceAccountToken": False,
        "securityContext": pod_security(uid),
        "terminationGracePeriodSeconds": seconds(service.get("stop_grace_period", "30s")),
    }
    if init_containers:
        pod["initContainers"] = init_containers
    pod["containers"] = [container]
    if volumes:
        pod["volumes"] = volumes
    selector = {"app.kubernetes.io/name": service_name}
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            **metadata(service_name, "serving", variant.name),
            "annotations": {"serving-lab/description": variant.description},
        },
        # no `replicas`: the HorizontalPodAutoscaler owns it (re-applying would otherwise reset it)
        "spec": {
            "selector": {"matchLabels": selector},
            "template": {"metadata": {"labels": labels(service_name, "serving", variant.name)}, "spec": pod},
        },
    }
    kube_service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(service_name, "serving", variant.name),
        "spec": {"selector": selector, "ports": [{"name": "http", "port": port, "targetPort": "http"}]},
    }
    autoscaler = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": metadata(service_name, "serving", variant.name),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": service_name},
            "minReplicas": HPA_MIN_REPLICAS,
            "maxReplicas": HPA_MAX_REPLICAS,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": HPA_CPU_UTILIZATION},
                    },
                }
            ],
        },
    }
    return {"deployment.yaml": deployment, "service.yaml": kube_service, "hpa.yaml": autoscaler}
