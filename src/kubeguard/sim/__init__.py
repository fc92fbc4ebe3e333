"""Cluster traffic simulator: realistic audit events for tests, benchmarks and the quality report.

``Simulator(SimConfig(...)).events()`` yields ``audit.k8s.io/v1`` Event dicts in time order;
``.stream()`` pairs each with its cluster; ``.labels`` holds the ground truth of injected attacks.
"""

from kubeguard.sim.simulator import SimConfig, Simulator

__all__ = ["SimConfig", "Simulator"]
