"""Sizes the wire models bound requests by, in a module of their own: computenet.schemas (and so
`cnet jobs`) imports these without loading the sbatch parser and its option table."""

MAX_SCRIPT_BYTES = 1024 * 1024  # 1 MiB: sbatch scripts are small; data goes in files
