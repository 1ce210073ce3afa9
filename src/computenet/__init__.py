"""ComputeNet: one front door over many Slurm clusters."""

__version__ = "0.1.0"
