"""Build a variant's predictor the way its service does: settings from the environment, then load."""

from __future__ import annotations

import importlib
from typing import Any

from serving_core.predictor import Predictor
from serving_core.settings import ServingSettings


def load_object(reference: str) -> Any:
    """``package.module:Name`` -> the object."""
    module_name, _, attribute = reference.partition(":")
    return getattr(importlib.import_module(module_name), attribute)


def build_serving(predictor_ref: str, settings_ref: str) -> tuple[Predictor, ServingSettings]:
    """A loaded predictor, plus the settings its service reads (decode limits, top-k rules, threads)."""
    settings = load_object(settings_ref)()
    predictor = load_object(predictor_ref)(settings)
    predictor.load()
    return predictor, settings
