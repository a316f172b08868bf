"""Closed-loop load on the predict endpoint: each user posts the same image again once answered.

Usable on its own with the Locust command line (for example from a container), configured by environment:
BENCH_PAYLOAD_IMAGE (image name in images/ or a path, default photo_medium), BENCH_PAYLOAD_FORMAT
(json | raw | multipart | oip-v2 | oip-v2-binary, default json), BENCH_OIP_INPUT (the OIP formats' input name)
and BENCH_PREDICT_PATH (default /predict):

    locust -f bench/load/locustfile.py --headless -u 8 -r 8 -t 30s -H http://127.0.0.1:8001 \
        --csv results/manual
"""

from __future__ import annotations

import os

from locust import FastHttpUser, constant, task
from locust.contrib.fasthttp import ResponseContextManager

from bench.payloads import load_payload, predicted_class
from bench.registry import PayloadFormat

PAYLOAD_FORMAT = PayloadFormat(os.environ.get("BENCH_PAYLOAD_FORMAT", PayloadFormat.JSON.value))
PAYLOAD = load_payload(
    os.environ.get("BENCH_PAYLOAD_IMAGE", "photo_medium"),
    PAYLOAD_FORMAT,
    oip_input=os.environ.get("BENCH_OIP_INPUT") or None,
)
PREDICT_PATH = os.environ.get("BENCH_PREDICT_PATH", "/predict")
REQUEST_TIMEOUT_S = float(os.environ.get("BENCH_REQUEST_TIMEOUT_S", "60"))


class PredictUser(FastHttpUser):
    wait_time = constant(0)
    connection_timeout = REQUEST_TIMEOUT_S
    network_timeout = REQUEST_TIMEOUT_S

    @task
    def predict(self) -> None:
        with self.client.post(
            PREDICT_PATH, data=PAYLOAD.body, headers=PAYLOAD.headers, name="predict", catch_response=True
        ) as response:
            fail_unless_prediction(response)


def fail_unless_prediction(response: ResponseContextManager) -> None:
    """A 200 that is not a prediction (a proxy page, an empty body, an error body) must not count as a
    success."""
    if response.status_code != 200:
        return  # Locust counts it as a failure already
    if predicted_class(PAYLOAD_FORMAT, 200, response.headers or {}, response.content or b"") is None:
        response.failure("200 without a prediction in the body")
