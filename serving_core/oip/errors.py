"""The failures only the Open Inference Protocol has; the rest are serving_core.errors' own."""

from __future__ import annotations

from serving_core.errors import ServingError


class InvalidInferenceRequestError(ServingError):
    """The body is not an inference request object (the protocol answers "typically 400")."""

    code = "invalid_inference_request"


class InvalidTensorError(ServingError):
    """A tensor whose name, datatype, shape, parameters or data the model cannot take."""

    code = "invalid_tensor"


class ModelNotFoundError(ServingError):
    status_code = 404
    code = "model_not_found"


class BatchTooLargeError(ServingError):
    """More images in one tensor than MAX_BATCH_ITEMS: a limit of this server, like the body and pixels."""

    status_code = 413
    code = "batch_too_large"
