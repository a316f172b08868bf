"""The KServe Open Inference Protocol v2 (REST) beside the native contract, served by every Python variant.

``schemas`` (the protocol's JSON objects as pydantic models), ``codec`` (request bodies, JSON or the binary
tensor data extension, <-> numpy, strictly validated), ``inference`` (the infer request path: it decodes
into the same uint8 images and runs the same ``serving_core.request_path`` steps as ``/predict``) and
``router`` (the ``/v2`` endpoints, included by ``serving_core.app.create_app``). Errors under ``/v2`` are the
protocol's ``{"error": "<message>"}`` (``serving_core.errors.error_response_for``).
"""
