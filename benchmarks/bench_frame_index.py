"""What the frame-numbering rule costs (zoo.data.decode): frames are counted, never computed from timestamps.

* PyAV: a seek maps decoded frames to their count through the sorted packet timestamps, a demux of the
  whole file (no decoding), cached per file; measured uncached against a 64-frame clip read.
* torchcodec: ``seek_mode="exact"`` (scans the file, counts frames) against ``"approximate"`` (frame index
  from the average rate, wrong on variable-frame-rate files), same clips, interleaved.

Videos: 10 s 25 fps 320x240 H.264 with a keyframe every 2 s (``bench_data.write_video``).

    python benchmarks/bench_frame_index.py [--videos 3] [--rounds 5]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from bench_data import write_video  # noqa: E402

from zoo.data import decode  # noqa: E402


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--videos", type=int, default=3)
    p.add_argument("--rounds", type=int, default=5)
    a = p.parse_args(argv)
    tmp = Path(tempfile.mkdtemp())
    paths = [tmp / f"v{i}.mp4" for i in range(a.videos)]
    for i, path in enumerate(paths):
        write_video(path, seed=i)
    rng = np.random.default_rng(0)
    t = {"index": [], "pyav clip": [], "approximate": [], "exact": []}
    tc = decode.torchcodec_available()
    for _ in range(a.rounds):
        for path in paths:
            s = int(rng.integers(decode.SEEK_MIN_FRAMES, 250 - 64))
            clip = list(range(s, s + 64))
            decode._pts_index.cache_clear()
            t0 = time.perf_counter()
            decode._packet_pts(path)
            t["index"].append(time.perf_counter() - t0)
            decode._pts_index.cache_clear()
            t0 = time.perf_counter()
            decode.read_frames(path, clip, backend="pyav")
            t["pyav clip"].append(time.perf_counter() - t0)
            if tc:
                from torchcodec.decoders import VideoDecoder
                for mode in ("approximate", "exact"):
                    t0 = time.perf_counter()
                    VideoDecoder(str(path), dimension_order="NHWC", num_ffmpeg_threads=1,
                                 seek_mode=mode).get_frames_at(clip)
                    t[mode].append(time.perf_counter() - t0)
    m = {k: float(np.median(v)) for k, v in t.items() if v}
    print(f"PyAV packet-timestamp index: {1e3 * m['index']:.1f} ms; 64-frame clip read (index included): "
          f"{1e3 * m['pyav clip']:.1f} ms; index / clip = {m['index'] / m['pyav clip']:.3f}")
    if tc:
        print(f"torchcodec 64-frame clip: approximate {1e3 * m['approximate']:.1f} ms, exact {1e3 * m['exact']:.1f} ms;"
              f" exact / approximate = {m['exact'] / m['approximate']:.3f}")
    else:
        print("torchcodec not usable here: its comparison skipped")


if __name__ == "__main__":
    main()
