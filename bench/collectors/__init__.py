"""Collectors: each measures one thing about a variant, as plain data for raw/<variant>/<kind>.json."""
