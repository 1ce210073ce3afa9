"""Slurm: pure argv builders (commands), pure parsers, a transport, the adapter."""
