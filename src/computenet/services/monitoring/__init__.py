"""Watching jobs run: the agent's samples, idle GPUs, step usage, sample retention, efficiency reports and the platform's /metrics."""
