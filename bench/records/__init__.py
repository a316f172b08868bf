"""Typed raw results of a compare run: the models, one loader and the figures derived from them."""

from bench.records.loader import RunRecords, VariantRecords, load_run
from bench.records.models import NotMeasured

__all__ = ["NotMeasured", "RunRecords", "VariantRecords", "load_run"]
