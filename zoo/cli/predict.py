"""``quovadis predict``: classify a video file or GIF with a zoo model."""
from __future__ import annotations

import sys
from pathlib import Path

from zoo.cli.options import add_precision_option


def run(args) -> int:

    import zoo
    from zoo.data.decode import flow_from_rgb_encoding, read_frames, video_info

    entry = zoo.info(args.model)
    for clip in (args.file, args.flow):  # before any weights are downloaded
        if clip is not None and not Path(clip).is_file():
            raise FileNotFoundError(f"video {clip} does not exist" if not Path(clip).exists()
                                    else f"{clip} is not a video file")
    if entry.arch == "two_stream_i3d":
        if not args.flow:
            raise ValueError(f"{args.model} is two-stream: give the flow clip with --flow FILE")
        weights = {"rgb": args.weights, "flow": args.flow_weights} if (args.weights or args.flow_weights) else None
    else:
        weights = args.weights
    from zoo.models.inference import InferenceModel
    model = InferenceModel(zoo.load(args.model, weights=weights), device=args.device, precision=args.precision,
                           exact=args.exact)
    print(f"quovadis predict: {model.describe()}", file=sys.stderr)
    frames, fps = read_frames(args.file), video_info(args.file)[1]
    prep = entry.transform
    if entry.arch == "two_stream_i3d":
        flow_frames = read_frames(args.flow)
        logits = model(prep["rgb"](frames, fps=fps)[None], prep["flow"](flow_from_rgb_encoding(flow_frames))[None])
    elif entry.modality == "flow":
        logits = model(prep(flow_from_rgb_encoding(frames))[None])
    else:
        logits = model(prep(frames, fps=fps)[None])
    probs = logits.softmax(-1)[0]
    top = probs.topk(args.top)
    names = entry.label_names
    print(f"{args.file}: {frames.shape[0]} frames at {fps:.1f} fps, model {args.model}, logit norm "
          f"{logits.norm().item():.3f}")
    print(f"{'prob':>10}  {'logit':>9}  class")
    for p, i in zip(top.values.tolist(), top.indices.tolist()):
        print(f"{p:10.6f}  {logits[0, i].item():9.4f}  {names[i]}")
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("predict", help="classify a video file or GIF with a zoo model")
    p.add_argument("file")
    p.add_argument("--model", default="i3d_inception_k400_rgb_imagenet")
    p.add_argument("--weights", default=None, help="local safetensors file (else the cache / the release / Hub)")
    p.add_argument("--flow", default=None, help="two-stream: the flow clip (x in red, y in green)")
    p.add_argument("--flow-weights", default=None)
    p.add_argument("--top", type=int, default=5)
    p.add_argument("--device", default=None, help="cpu, cuda (default: cuda if available)")
    add_precision_option(p, "auto")
    p.add_argument("--exact", action="store_true", help="the unfused fp32 model (default: the fused fast path)")
    p.set_defaults(func=run)
