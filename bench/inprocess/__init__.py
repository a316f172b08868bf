"""The variants' own Python code run in one process, no HTTP: the in-process ceiling, sweeps and profiles.

Each job runs in a child process (``python -m bench.inprocess``) pinned to the service cores with the
variant's own environment (threads, artifacts), so its peak RSS and thread use belong to that variant alone.
"""
