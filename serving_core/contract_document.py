"""The OpenAPI document of some of the protocols a serving_core app speaks.

Every serving_core service speaks both protocols of ``PROTOCOLS``. A service in another language may speak
only the predict contract; its document is this one restricted to ``predict`` (the Rust service serves it
as its openapi.json, under external/), written by::

    python -m serving_core.contract_document <package>.app:app --protocols predict > openapi.json
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from collections.abc import Iterable
from typing import Any

from fastapi import FastAPI

from serving_core.hosting import named

# The path prefix of each protocol other than the predict contract (which owns every other path).
PROTOCOL_PREFIXES = {"kserve-v2": "/v2"}
PROTOCOLS = ["predict", *PROTOCOL_PREFIXES]
SCHEMA_REF = "#/components/schemas/"


def protocol_of(path: str) -> str:
    for protocol, prefix in PROTOCOL_PREFIXES.items():
        if path == prefix or path.startswith(f"{prefix}/"):
            return protocol
    return "predict"


def contract_document(app: FastAPI, protocols: Iterable[str] = PROTOCOLS) -> dict[str, Any]:
    """``app.openapi()`` with only the paths of ``protocols`` and the schemas those paths reach."""
    wanted = set(protocols)
    unknown = wanted - set(PROTOCOLS)
    if unknown:
        raise ValueError(f"unknown protocols {sorted(unknown)}; known: {PROTOCOLS}")
    document = copy.deepcopy(app.openapi())
    document["paths"] = {
        path: item for path, item in document["paths"].items() if protocol_of(path) in wanted
    }
    schemas = document.get("components", {}).get("schemas")
    if schemas is not None:
        reached = _schemas_reached(document["paths"], schemas)
        document["components"]["schemas"] = {name: schemas[name] for name in schemas if name in reached}
    return document


def _schemas_reached(paths: dict[str, Any], schemas: dict[str, Any]) -> set[str]:
    """The component schemas the paths refer to, directly or through other schemas."""
    reached: set[str] = set()
    pending = _references(paths)
    while pending:
        name = pending.pop()
        if name not in reached and name in schemas:
            reached.add(name)
            pending |= _references(schemas[name])
    return reached


def _references(node: Any) -> set[str]:
    if isinstance(node, dict):
        found = (
            {node["$ref"].removeprefix(SCHEMA_REF)}
            if str(node.get("$ref", "")).startswith(SCHEMA_REF)
            else set()
        )
        for value in node.values():
            found |= _references(value)
        return found
    if isinstance(node, list):
        return set().union(*map(_references, node)) if node else set()
    return set()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("app", help="the app, as module:attribute (<package>.app:app)")
    parser.add_argument("--protocols", nargs="+", default=PROTOCOLS, choices=PROTOCOLS)
    arguments = parser.parse_args(argv)
    document = contract_document(named(arguments.app), arguments.protocols)
    json.dump(document, sys.stdout, indent=1)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
