"""The embedded default executor: jobs as processes on this host.

Kept import-light: the per-job runner starts as ``python -m`` and must not
pull in the web stack.
"""
