"""``--ray ADDRESS`` for the commands that train many runs (``kdlab sweep``, ``kdlab experiment``): the flag,
and the executor of one command, i.e. its runs on a Ray cluster (kdlab.serve.ray_backend) or here.

The cluster is connected in the background while the command loads its data and teacher (an unreachable
address is refused at once, before any work), and a private local Ray (``--ray local``) is shut down when
the command ends, however it ends. Ray's own logging is quieted to errors so the user sees kdlab's bar and
its one-line messages (``--log-level INFO`` or ``DEBUG`` lets Ray speak again)."""
from __future__ import annotations

import argparse
import contextlib
from typing import Iterator

from kdlab.runs.batch import Executor, run_all

HELP = ("train the runs on a Ray cluster: 'local' starts a private Ray on this machine for this command "
        "('local:N': N CPUs), 'auto' joins one started here with `ray start --head`, else the head's "
        "host:port; needs pip install 'kdlab[ray]' (default: here, one run after another)")


def add_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--ray", default=None, metavar="ADDRESS", help=HELP)


@contextlib.contextmanager
def executor(address: str | None) -> Iterator[Executor]:
    """run_all without an address; else run_all_on_ray on that cluster, which is closed on leaving."""
    if not address:
        yield run_all
        return
    from kdlab.serve.ray_backend import executor as on_ray
    from kdlab.serve.ray_cluster import RayCluster, quiet_ray_logs, ray_module

    ray_module()  # RayUnavailable if Ray is not installed
    quiet_ray_logs()
    cluster = RayCluster.start(address, warm=True)  # RayUnavailable here for a bad or unreachable address
    try:
        yield on_ray(cluster)
    finally:
        cluster.close()
