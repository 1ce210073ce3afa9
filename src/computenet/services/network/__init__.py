"""The clusters of the network: the registry, adapters and probes, routing jobs to a cluster, re-routing, and the routing simulator."""
