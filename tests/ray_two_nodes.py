"""A two-node Ray cluster on this machine, for tests: `python tests/ray_two_nodes.py CPUS`.

Both nodes run on 127.0.0.1 with ports and raylets of their own (`ray.cluster_utils`, the way
Ray's own tests make multi-node clusters); the GCS address is printed on a line
`ADDRESS <host:port>` (Ray logs to stdout as well), and the cluster is shut down when stdin
closes (the test that started it ends)."""

from __future__ import annotations

import os
import sys

os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"  # stay on loopback

from ray.cluster_utils import Cluster  # noqa: E402


def main() -> None:
    cpus = int(sys.argv[1]) if len(sys.argv) > 1 else 2
    cluster = Cluster(
        initialize_head=True,
        connect=False,
        head_node_args={
            "num_cpus": cpus,
            "include_dashboard": False,
            "node_ip_address": "127.0.0.1",
        },
    )
    try:
        cluster.add_node(num_cpus=cpus, node_ip_address="127.0.0.1")
        print(f"ADDRESS {cluster.address}", flush=True)  # Ray logs to stdout too
        sys.stdin.read()  # until the test closes our stdin
    finally:
        cluster.shutdown()


if __name__ == "__main__":
    main()
