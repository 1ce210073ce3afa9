"""Simulating the compute network on workload traces, with the live router."""
