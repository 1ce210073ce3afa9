"""Routing jobs across the network: feasibility, wait prediction, policies."""
