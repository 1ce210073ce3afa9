"""Slurm through slurmrestd (OpenAPI v0.0.38) with JWTs: pure request builders and parsers, an HTTP adapter."""
