"""Locust on Kubernetes: the settings ConfigMap, the master Job and its Service, the worker Job."""

from __future__ import annotations

import re
from typing import Any

from bench.k8s.compose import Compose, ManifestError, compose_default, image_uid
from bench.k8s.constants import (
    LOCUST_MASTER_CPU,
    LOCUST_MASTER_DEADLINE_S,
    LOCUST_MASTER_PORT,
    LOCUST_MEMORY,
    LOCUST_RUN,
    LOCUST_WAIT_FOR_WORKERS_S,
    LOCUST_WORKERS,
)
from bench.k8s.objects import container_security, labels, metadata, pod_security


def locust_manifests(compose: Compose) -> dict[str, Any]:
    """The load generator: settings, master Job + Service, worker Job (both Jobs end with the run)."""
    master, worker = compose.service("locust-master"), compose.service("locust-worker")
    image = compose.image("locust-master")
    if compose.image("locust-worker") != image:
        raise ManifestError("compose's locust-master and locust-worker run different images")
    target = re.search(r"--host\s+(\S+)", str(master.get("command", "")))
    if target is None:
        raise ManifestError("compose's locust-master command has no --host")
    uid = image_uid(compose.dockerfile("locust-master"))
    settings = {
        "LOCUST_HOST": compose_default(target[1]),
        **LOCUST_RUN,
        "LOCUST_EXPECT_WORKERS": str(LOCUST_WORKERS),
        **compose.environment("locust-worker"),
    }
    config = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata("locust-settings", "load"),
        "data": settings,
    }

    def pod(name: str, args: list[str], resources: dict[str, str], restart: str) -> dict[str, Any]:
        container = {
            "name": "locust",
            "image": image,
            "imagePullPolicy": "IfNotPresent",
            # only args: the image's entrypoint runs the bench's locustfile (bench/load/locustfile.py)
            "args": args,
            "envFrom": [{"configMapRef": {"name": "locust-settings"}}],
            "resources": {"requests": dict(resources), "limits": dict(resources)},
            "securityContext": container_security(),
        }
        if name == "locust-master":
            container["ports"] = [{"name": "master", "containerPort": LOCUST_MASTER_PORT}]
        return {
            "metadata": {"labels": labels(name, "load")},
            "spec": {
                "automountServiceAccountToken": False,
                "restartPolicy": restart,
                "securityContext": pod_security(uid),
                "containers": [container],
            },
        }

    master_job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": metadata("locust-master", "load"),
        "spec": {
            "backoffLimit": 0,
            "activeDeadlineSeconds": LOCUST_MASTER_DEADLINE_S,
            "template": pod(
                "locust-master",
                [
                    "--master",
                    "--headless",
                    "--expect-workers-max-wait",
                    str(LOCUST_WAIT_FOR_WORKERS_S),
                    "--only-summary",
                    "--json",
                ],
                {"cpu": LOCUST_MASTER_CPU, "memory": LOCUST_MEMORY},
                "Never",
            ),
        },
    }
    master_service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata("locust-master", "load"),
        "spec": {
            "selector": {"app.kubernetes.io/name": "locust-master"},
            "ports": [{"name": "master", "port": LOCUST_MASTER_PORT, "targetPort": "master"}],
        },
    }
    worker_command = compose_default(worker.get("command", "")).split()
    worker_resources = {**compose.limits("locust-worker"), "memory": LOCUST_MEMORY}
    worker_job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": metadata("locust-worker", "load"),
        "spec": {
            "parallelism": LOCUST_WORKERS,
            "completions": LOCUST_WORKERS,
            # a worker that starts before the master's Service answers exits and is retried
            "backoffLimit": 4 * LOCUST_WORKERS,
            "activeDeadlineSeconds": LOCUST_MASTER_DEADLINE_S,
            "template": pod("locust-worker", worker_command, worker_resources, "OnFailure"),
        },
    }
    return {
        "configmap.yaml": config,
        "master-job.yaml": master_job,
        "master-service.yaml": master_service,
        "worker-job.yaml": worker_job,
    }
