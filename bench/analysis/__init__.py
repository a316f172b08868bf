"""Analyses on top of the bench core: measurement stability, queueing model, max RPS under an SLO."""
