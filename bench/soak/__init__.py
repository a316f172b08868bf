"""Soak and faults: hold a variant at a steady share of its capacity for a long time and judge whether its
memory, file descriptors or threads grow with the requests it serves; kill one worker of a multi-worker
service under load and account for every request.

``python -m bench.soak --variants onnx,torch,rust --duration 30m`` (see ``__main__``) writes
``results/soak/<stamp>/soak.json`` (:class:`bench.soak.records.SoakRun`) and ``soak.md`` beside it.

plan      what a soak runs (duration, warm-up, load share, sampling), parsed from the command line
capacity  the closed-loop ceiling the steady open-loop rate is a share of
sampler   RSS, open file descriptors and threads of the service's whole process tree, every few seconds
verdict   least-squares slopes against the requests served, and the bounds they are judged by
run       one variant: start, measure capacity, hold the load while sampling, stop, judge
faults    SIGKILL of one worker under load: what was lost, the restart, the recovery
markdown  soak.md
"""
