"""Settings of a variant that hosts another variant's predictor (a serving framework in front of it).

The predictor and its settings class are named, as the registry's ``[variant.in_process]`` names them, not
imported: a variant imports no other variant (pyproject.toml's layers). Each hosting variant's settings class
gives its own defaults; the core names no variant.
"""

from __future__ import annotations

import importlib
from typing import Any

from pydantic import Field

from serving_core.predictor import PredictorFactory
from serving_core.settings import ServingSettings


def named(path: str) -> Any:
    """The object a ``"package.module:Name"`` string names."""
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


class HostingSettings(ServingSettings):
    hosted_predictor: str = Field(description="the Predictor it hosts (module:Class)")
    hosted_settings: str = Field(description="its settings class (module:Class)")

    def hosted(self) -> tuple[PredictorFactory, ServingSettings]:
        """The hosted predictor and its settings, read from the environment like the predictor's own
        variant's, with this variant's name, port and workers."""
        settings_class: type[ServingSettings] = named(self.hosted_settings)
        settings = settings_class(variant=self.variant, port=self.port, workers=self.workers)
        return named(self.hosted_predictor), settings
