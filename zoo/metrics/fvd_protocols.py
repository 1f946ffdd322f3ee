"""Named FVD protocols: which clips of which videos, how many, and how a number is reported.

    >>> from zoo.metrics.fvd_protocols import get_protocol
    >>> p = get_protocol("stylegan-v-16f"); p.frames, p.videos, p.real_offset, p.fake_offset
    (16, 2048, 'random', 'start')

The network (I3D rgb_scratch Logits), the resize (TF1 legacy bilinear to 224x224, no crop) and the formula
(tfgan's float64 Fréchet distance) are the same in every protocol; a preset only changes the clip sampling,
the number of videos and how trials are reported. The table is documented in ``docs/fvd.md``.

Random clip offsets are seeded per video from ``(seed, video name)``, so a video gets the same clip in any
shard, on any rank, in any order.
"""
from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Protocol:
    name: str
    frames: int                  # frames per clip
    stride: int                  # every stride-th frame
    videos: int | None           # videos per side (the first usable ones of the sorted list); None: all
    real_offset: str             # "start" (frame 0) or "random" (seeded per video)
    fake_offset: str
    short_videos: str            # "error" (stop or --on-error skip) or "drop" (left out, counted)
    trials: int                  # videogpt: FVD on `trial_videos` random videos per side, `trials` times
    trial_videos: int | None
    source: str                  # the implementation it follows
    changes: str                 # what it changes against `reference`
    fixed_clip: bool = True      # --frames / --stride may not be changed

    def describe(self) -> dict:
        """What travels in stats files and JSON (and must match to compare)."""
        d = asdict(self)
        for k in ("source", "changes", "fixed_clip"):
            d.pop(k)
        return d

    def offset_kind(self, side: str) -> str:
        if side not in ("real", "fake"):
            raise ValueError(f"side must be 'real' or 'fake', got {side!r}")
        return self.real_offset if side == "real" else self.fake_offset


PROTOCOLS: dict[str, Protocol] = {p.name: p for p in (
    Protocol("reference", 16, 1, None, "start", "start", "error", 1, None,
             "google-research/google-research frechet_video_distance (fvd.py, example.py)",
             "nothing: the first --frames frames (every --stride-th) of every video", fixed_clip=False),
    Protocol("stylegan-v-16f", 16, 1, 2048, "random", "start", "drop", 1, None,
             "universome/stylegan-v src/metrics/frechet_video_distance.py (fvd2048_16f)",
             "2048 videos per side; real clips at a seeded random offset, fake clips at frame 0; videos shorter "
             "than the clip are dropped"),
    Protocol("stylegan-v-128f", 128, 1, 2048, "random", "start", "drop", 1, None,
             "universome/stylegan-v src/metrics/frechet_video_distance.py (fvd2048_128f)",
             "as stylegan-v-16f with 128-frame clips"),
    Protocol("videogpt", 16, 1, None, "start", "start", "error", 4, 256,
             "wilson1yan/VideoGPT (FVD on 256 videos per side, 4 trials, mean ± std)",
             "FVD on 256 random videos per side (seeded), 4 trials, reported as mean ± std; needs the "
             "per-video features (--keep-features) when a side is a stats file"),
)}


def get_protocol(name: str) -> Protocol:
    try:
        return PROTOCOLS[name]
    except KeyError:
        raise ValueError(f"unknown FVD protocol {name!r}; choose one of {', '.join(PROTOCOLS)}") from None


def clip_for(protocol: Protocol, frames: int | None, stride: int | None) -> tuple[int, int]:
    """The clip (frames, stride) of a run: the preset's, or the user's for ``reference``."""
    if protocol.fixed_clip:
        for opt, given, fixed in (("--frames", frames, protocol.frames), ("--stride", stride, protocol.stride)):
            if given is not None and given != fixed:
                raise ValueError(f"--protocol {protocol.name} fixes {opt} {fixed}; got {opt} {given} (use "
                                 "--protocol reference to choose the clip yourself)")
        return protocol.frames, protocol.stride
    return frames if frames is not None else protocol.frames, stride if stride is not None else protocol.stride


def clip_offset(kind: str, num_frames: int, need: int, seed: int, name: str) -> int:
    """First frame of a video's clip: 0 for "start"; for "random" uniform in ``[0, num_frames - need]``,
    drawn from ``sha256(seed:name)`` so that it does not depend on order, shard or rank."""
    if kind == "start" or num_frames <= need:
        return 0
    digest = hashlib.sha256(f"{seed}:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "little") % (num_frames - need + 1)
