#!/usr/bin/env python3
"""What the one-handle mounts cost per start: N container starts in one process, timed from
outside by farm-bench, against another tree of minins (say, the commit before).

    farm-bench -n 20 --vs 'python3 tools/bench_mounts.py --tree OLD_TREE' -- \
        python3 tools/bench_mounts.py
    python3 tools/bench_mounts.py --fallback   # force the mount(2) fallback

Each start is a busybox rootfs (built once under /tmp, kept for later calls) with what the
swap race touches: restrict_sys's masks, a read-only bind, a read-only tmpfs, the default
device nodes; /bin/true as the command; no cgroup and no network, so that the mounts
dominate. ``--default`` runs the default configuration (the host's / with its socket places
covered) instead.
"""
import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tree", default=os.path.dirname(HERE), help="the minins checkout to use")
    ap.add_argument("--starts", type=int, default=10)
    ap.add_argument("--fallback", action="store_true", help="force the mount(2) fallback")
    ap.add_argument("--default", action="store_true", help="the default configuration")
    args = ap.parse_args()
    sys.path.insert(0, args.tree)
    sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))
    import minins
    from minins import config, rootfs
    from minins.config import Mount, MountConfig, Namespace

    if args.fallback:
        rootfs._new_api = [False]
    if args.default:
        cfg = config.default_config().replace(cgroups=None)
    else:
        root = "/tmp/minins-bench-mounts/rootfs"
        if not os.path.exists(root + "/bin/busybox"):
            from rootfs_util import build_rootfs

            build_rootfs(root)
            os.makedirs("/tmp/minins-bench-mounts/src", exist_ok=True)
        cfg = config.default_config().replace(
            root_fs=root, environment=("PATH=/bin",), cgroups=None, networks=(),
            namespaces=tuple(Namespace(type=t) for t in ("NEWNS", "NEWUTS", "NEWIPC",
                                                         "NEWPID")),
            mount_config=MountConfig(readonly_fs=True, device_nodes=config.DEFAULT_DEVICE_NODES,
                                     mounts=(Mount(type="bind", destination="/mnt",
                                                   source="/tmp/minins-bench-mounts/src"),
                                             Mount(type="tmpfs", destination="/tmp"))))
    with open(os.devnull, "wb") as null:
        for _ in range(args.starts):
            code = minins.run(cfg, ["/bin/true"], stdout=null, stderr=null,
                              state_root="/tmp/minins-bench-mounts/state")
            if code != 0:
                sys.exit("a start failed: %d" % code)


if __name__ == "__main__":
    main()
