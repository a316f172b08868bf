"""Build a variant's predictor the way its service does: settings from the environment, then load."""

from __future__ import annotations

import importlib
from typing import Any

from serving_core.app import ServingApp
from serving_core.predictor import Predictor


def load_object(reference: str) -> Any:
    """``package.module:Name`` -> the object."""
    module_name, _, attribute = reference.partition(":")
    return getattr(importlib.import_module(module_name), attribute)


def build_serving(predictor_ref: str, settings_ref: str) -> tuple[Predictor, ServingApp]:
    """A loaded predictor, plus the app state the service wraps it in (decode limits, top-k rules)."""
    factory = load_object(predictor_ref)
    settings = load_object(settings_ref)()
    predictor = factory(settings)
    predictor.load()
    return predictor, ServingApp(factory, settings)
