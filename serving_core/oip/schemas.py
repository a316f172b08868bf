"""The Open Inference Protocol's JSON objects (REST): the requests it reads, the answers it gives.

Requests are validated strictly (``strict=True``: a shape of ``[1.0]`` or ``["1"]`` is refused, not coerced);
unknown keys are ignored, as clients send some of their own (``model_name`` in a request, say).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr

ParameterValue = StrictBool | StrictInt | StrictFloat | StrictStr
Parameters = dict[str, ParameterValue]
"""The protocol's ``$parameters``: name -> string, number or boolean."""


class _Request(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore")


class RequestInput(_Request):
    name: str
    shape: list[Annotated[int, Field(ge=0)]]
    datatype: str
    parameters: Parameters | None = None
    data: list[Any] | None = Field(
        None, description="row-major, flat or nested; absent when the tensor is binary (binary_data_size)"
    )


class RequestOutput(_Request):
    name: str
    parameters: Parameters | None = None


class InferenceRequest(_Request):
    id: str | None = None
    parameters: Parameters | None = None
    inputs: list[RequestInput] = Field(min_length=1)
    outputs: list[RequestOutput] | None = Field(None, min_length=1, description="absent: every output")


class ResponseOutput(BaseModel):
    name: str
    shape: list[int]
    datatype: str
    parameters: Parameters | None = None
    data: list[Any] | None = None


class InferenceResponse(BaseModel):
    model_name: str
    model_version: str | None = None
    id: str | None = None
    parameters: Parameters | None = None
    outputs: list[ResponseOutput]


class MetadataTensor(BaseModel):
    name: str
    datatype: str
    shape: list[int] = Field(description="-1 for a variable dimension")


class ModelMetadata(BaseModel):
    name: str
    versions: list[str]
    platform: str
    inputs: list[MetadataTensor]
    outputs: list[MetadataTensor]


class ServerMetadata(BaseModel):
    name: str
    version: str
    extensions: list[str]


class ServerLive(BaseModel):
    live: bool


class ServerReady(BaseModel):
    ready: bool
    live: bool = Field(
        description="the specification's text calls the server-ready field 'live': both are sent"
    )


class ModelReady(BaseModel):
    name: str
    ready: bool


class OipErrorResponse(BaseModel):
    error: str
