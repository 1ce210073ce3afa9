"""Use cases and background loops. Loops expose run_once() for tests."""
