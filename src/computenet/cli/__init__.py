"""The `cnet` command line."""
