"""Cluster adapters behind one protocol (see base.py)."""
