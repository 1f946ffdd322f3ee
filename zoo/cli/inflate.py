"""``quovadis inflate``: inflate a timm/torchvision model and check it on a boring video."""
from __future__ import annotations

import sys
import time


def _parse_model(spec: str) -> tuple[str, str]:
    for prefix, kind in (("timm:", "timm"), ("tv:", "torchvision"), ("torchvision:", "torchvision")):
        if spec.startswith(prefix):
            return kind, spec[len(prefix):]
    return "timm", spec


def run(args) -> int:
    import inflate
    from inflate.sources import (
        create_timm,
        create_torchvision,
        timm_source,
        torchvision_source,
    )

    kind, name = _parse_model(args.model)
    if kind == "timm":
        model_2d = create_timm(name, pretrained=args.pretrained)
        source = timm_source(name, model_2d, {})
    else:
        model_2d = create_torchvision(name, weights="DEFAULT" if args.pretrained else None)
        source = torchvision_source(name, {})
    size = args.size or source["input_size"][-1]
    model_2d.eval()
    start = time.perf_counter()
    video = inflate.inflate(model_2d, time_kernel=args.time_kernel, policy=args.policy, init=args.init,
                            time_padding=args.time_padding, causal=args.causal, source=source)
    seconds = time.perf_counter() - start
    report = inflate.build_report(f"{kind}:{name}", model_2d, video, frames=args.frames, size=(size, size),
                                  seconds=seconds)
    print(report.format())
    if args.out:
        path = inflate.save(video, args.out)
        print(f"wrote            {path} ({path.stat().st_size / 1e6:.1f} MB, safetensors, config in metadata)")
    ok = report.max_rel_error < args.tolerance
    if not ok:
        print(f"error: boring-video error {report.max_rel_error:.2e} is above --tolerance {args.tolerance:g}",
              file=sys.stderr)
    return 0 if ok else 1


def add_parser(sub) -> None:
    p = sub.add_parser("inflate", help="inflate a timm/torchvision model and check it on a boring video")
    p.add_argument("model", nargs="?", default="resnet50",
                   help="timm name (default resnet50), or tv:NAME for torchvision")
    p.add_argument("--time-kernel", type=int, default=3, help="temporal kernel for every conv with k>1 (default 3)")
    p.add_argument("--policy", default=None,
                   help="preset (i3d, i3d_3x1x1, slow, tubelet) or rules 'PATTERN=K[/S[/D]]; ...'")
    p.add_argument("--init", default="mean", help="mean (default), center, first, last, noise")
    p.add_argument("--time-padding", default="replicate", help="replicate (default), zeros, circular")
    p.add_argument("--causal", action="store_true", help="pad time only at the front")
    p.add_argument("--frames", type=int, default=8, help="clip length T for the check and GFLOPs (default 8)")
    p.add_argument("--size", type=int, default=None, help="frame size (default: the model's input size)")
    p.add_argument("--pretrained", action="store_true", help="start from pretrained 2D weights (needs them cached)")
    p.add_argument("--tolerance", type=float, default=1e-4, help="fail above this boring-video error")
    p.add_argument("--out", default=None, help="write the video model to FILE.safetensors (atomically)")
    p.set_defaults(func=run)
