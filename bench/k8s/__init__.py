"""Kubernetes manifests for the lab, generated from the registry and compose.yaml (deploy/k8s/README.md).

``python -m bench.k8s`` (re)writes ``deploy/k8s/base`` and ``deploy/k8s/overlays``; ``--check`` only compares
and exits 1 when the committed files differ (tests/unit/test_k8s_manifests.py does the same), so the
manifests cannot drift from bench/variants.toml and compose.yaml.

What comes from where:

* one Deployment + Service + HorizontalPodAutoscaler per registered variant whose compose service has an
  image (the registry as compose sees it: with docker/external.variants.toml); its image, container port,
  environment, CPU and memory limits, grace period and read-only root are compose's defaults, its settings
  the registry's; objects are named like the compose services, so in-cluster URLs are compose's URLs
  (``http://onnx-serving:8002``);
* requests equal limits (1 CPU per service, as compose pins and the bench budgets): Guaranteed QoS, an
  exclusive core under the kubelet's static CPU manager;
* a bind-mounted repository folder (the external service's ``./build/artifacts:/artifacts:ro``) becomes an
  emptyDir filled by an init container from the first image that carries those files (onnx's image);
* one overlay per bench profile (``quick`` = torch, onnx, rust), listing the variants the profile runs;
* Locust (``base/locust``, applied on its own for each run once the services are ready): a master Job
  (headless, prints its final stats as JSON), its Service and a worker Job, from the ``serving-lab/locust``
  image with its own locustfile (bench/load/locustfile.py), configured by a ConfigMap of Locust's LOCUST_*
  variables and compose's BENCH_* defaults.
"""

from __future__ import annotations

from bench.k8s.files import differences, generate, write

__all__ = ["differences", "generate", "write"]
