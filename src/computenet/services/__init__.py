"""Use cases and background loops, one package per feature (README, "Layout"). Loops expose run_once() for tests."""
