"""The stable machine identities of one cluster, as ready-made :class:`Caller` values.

A controller's service-account uid, a node's instance-role session: these do not change from one request
to the next, so they are built once per cluster (from the cluster's own generator, which keeps them the
same whatever attacks are injected) and shared by every actor that speaks for them. Each identity draws
from a generator seeded by its own name, so the order in which actors first ask for them changes nothing.
"""

from __future__ import annotations

import random

from kubeguard.sim import identities as ids
from kubeguard.sim.cluster import Cluster, Node
from kubeguard.sim.events import Caller

_LOOPBACK = ["127.0.0.1"]


class Directory:
    """Callers for the control plane, controllers, nodes and add-on service accounts of a cluster."""

    def __init__(self, cluster: Cluster, seed: str) -> None:
        self.cluster = cluster
        self._seed = seed
        rng = self._rng("nodes")
        self._controllers: dict[str, Caller] = {}
        self._accounts: dict[tuple[str, str], Caller] = {}
        self.nodes: dict[str, Caller] = {}
        for node in cluster.nodes:
            user = ids.node_user(node.name, node.instance_id, node.principal_id, ids.access_key_id(rng))
            self.nodes[node.name] = Caller(user, [node.ip], ids.KUBELET)
        self.controller_manager = Caller(ids.control_plane_user("system:kube-controller-manager"),
                                         list(_LOOPBACK), f"{ids.CONTROLLER_MANAGER}/leader-election")
        self.scheduler = Caller(ids.control_plane_user("system:kube-scheduler"), list(_LOOPBACK), ids.SCHEDULER)

    def controller(self, name: str) -> Caller:
        """A kube-controller-manager loop (``replicaset-controller``...) under its own service account."""
        caller = self._controllers.get(name)
        if caller is None:
            user = ids.controller(name, self._rng(name))
            caller = Caller(user, list(_LOOPBACK), f"{ids.CONTROLLER_MANAGER}/{user['username']}",
                            reason=f'RBAC: allowed by ClusterRoleBinding "system:controller:{name}" of '
                                   f'ClusterRole "system:controller:{name}" to ServiceAccount '
                                   f'"{name}/kube-system"')
            self._controllers[name] = caller
        return caller

    def account(self, namespace: str, name: str, agent: str, ip: str | None = None) -> Caller:
        """An add-on's service account, calling from its pod's address on the first node."""
        key = (namespace, name)
        caller = self._accounts.get(key)
        if caller is None:
            rng = self._rng(f"{namespace}/{name}")
            node = self.node_for(f"{namespace}/{name}")
            pod = f"{name}-{rng.getrandbits(40):010x}"[:24]
            user = ids.service_account(namespace, name, rng, node=node.name, pod=pod)
            address = ip or f"10.0.{rng.randrange(32, 63)}.{rng.randrange(2, 254)}"
            caller = Caller(user, [address], agent)
            self._accounts[key] = caller
        return caller

    def _rng(self, key: str) -> random.Random:
        return random.Random(f"{self._seed}:{key}")

    def node_for(self, key: str) -> Node:
        """The node a pod runs on: a stable choice per pod name, so a kubelet serves the same pods."""
        nodes = self.cluster.nodes
        return nodes[sum(key.encode()) % len(nodes)]
