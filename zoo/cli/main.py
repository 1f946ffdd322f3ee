"""The ``quovadis`` command."""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


def _parse_model(spec: str) -> tuple[str, str]:
    for prefix, kind in (("timm:", "timm"), ("tv:", "torchvision"), ("torchvision:", "torchvision")):
        if spec.startswith(prefix):
            return kind, spec[len(prefix):]
    return "timm", spec


def cmd_inflate(args) -> int:
    import torch

    import inflate
    from inflate.sources import create_timm, create_torchvision, timm_source, torchvision_source

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


def cmd_convert(args) -> int:
    from zoo.registry import name_of_variant
    from zoo.weights.deepmind import convert_deepmind

    start = time.perf_counter()
    result = convert_deepmind(args.src, args.out, variant=args.variant)
    print(f"converted {result.variant}: {result.tensors} tensors ({result.skipped} optimizer slots skipped) "
          f"-> {result.out} in {time.perf_counter() - start:.1f} s")
    for name, digest in result.sha256.items():
        print(f"  source {name}  sha256 {digest}")
    print(f"load it with: zoo.load('{name_of_variant(result.variant) or '?'}', weights='{result.out}')")
    return 0


def cmd_predict(args) -> int:
    import torch

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


def cmd_zoo_build(args) -> int:
    from zoo.registry import get_entry, name_of_variant
    from zoo.weights.deepmind import VARIANTS, convert_deepmind
    from zoo.weights.files import cached_path, quovadis_cache

    root = Path(args.kinetics_i3d)
    candidates = [root / "data" / "checkpoints", root / "checkpoints", root]
    ckpt_root = next((c for c in candidates if any((c / v).is_dir() for v in VARIANTS)), None)
    if ckpt_root is None:
        raise FileNotFoundError(f"{root} holds no kinetics-i3d checkpoints: expected folders like "
                                f"{root}/data/checkpoints/rgb_imagenet (git clone deepmind/kinetics-i3d)")
    cache = quovadis_cache(args.cache_dir)
    rows = []
    for variant in VARIANTS:
        folder = ckpt_root / variant
        name = name_of_variant(variant)
        if not folder.is_dir():
            rows.append((name, variant, "not found", "", ""))
            continue
        start = time.perf_counter()
        result = convert_deepmind(folder, cached_path(get_entry(name), args.cache_dir), variant=variant)
        rows.append((name, variant, f"{result.tensors} tensors", f"{result.out.stat().st_size / 1e6:.1f} MB",
                     f"{time.perf_counter() - start:.1f} s"))
    print(f"cache: {cache}")
    print(f"{'zoo name':36} {'variant':20} {'result':12} {'size':>9} {'time':>7}")
    for row in rows:
        print(f"{row[0]:36} {row[1]:20} {row[2]:12} {row[3]:>9} {row[4]:>7}")
    return 0 if any(r[2] != "not found" for r in rows) else 1


def cmd_push(args) -> int:
    import zoo
    url = zoo.push_to_hub(args.model, args.repo_id, weights=args.weights, private=args.private)
    print(f"pushed {args.model} to {args.repo_id}: {url}")
    return 0


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version("quovadis")
    except PackageNotFoundError:  # run from a source tree that was not installed
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="quovadis", description="2D->3D inflation, I3D zoo and converters")
    parser.add_argument("--version", action="version", version=f"quovadis {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)

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
    p.set_defaults(func=cmd_inflate)

    p = sub.add_parser("convert", help="convert a released checkpoint to safetensors")
    csub = p.add_subparsers(dest="source", required=True)
    c = csub.add_parser("deepmind", help="a kinetics-i3d TensorFlow checkpoint (folder, prefix or .index)")
    c.add_argument("src")
    c.add_argument("-o", "--out", required=True, help="OUT.safetensors (written atomically)")
    c.add_argument("--variant", default=None, help="override detection: rgb_scratch, rgb_imagenet, ...")
    c.set_defaults(func=cmd_convert)
    from zoo.cli.convert_formats import add_parsers as add_convert_parsers
    add_convert_parsers(csub)

    p = sub.add_parser("predict", help="classify a video file or GIF with a zoo model")
    p.add_argument("file")
    p.add_argument("--model", default="i3d_inception_k400_rgb_imagenet")
    p.add_argument("--weights", default=None, help="local safetensors file (else the cache / the release / Hub)")
    p.add_argument("--flow", default=None, help="two-stream: the flow clip (x in red, y in green)")
    p.add_argument("--flow-weights", default=None)
    p.add_argument("--top", type=int, default=5)
    p.add_argument("--device", default=None, help="cpu, cuda (default: cuda if available)")
    p.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"],
                   help="auto (default): bf16 on CUDA, fp32 on CPU")
    p.add_argument("--exact", action="store_true", help="the unfused fp32 model (default: the fused fast path)")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("zoo", help="zoo maintenance")
    zsub = p.add_subparsers(dest="zoo_command", required=True)
    z = zsub.add_parser("build", help="convert every released checkpoint of a kinetics-i3d checkout into the cache")
    z.add_argument("kinetics_i3d", help="path to a clone of deepmind/kinetics-i3d (or its data/checkpoints)")
    z.add_argument("--cache-dir", default=None)
    z.set_defaults(func=cmd_zoo_build)
    from zoo.cli.weights import add_parsers as add_cache_parsers
    add_cache_parsers(zsub)

    p = sub.add_parser("push", help="push a zoo model (with --weights) to the Hugging Face Hub")
    p.add_argument("model", help="zoo name")
    p.add_argument("repo_id")
    p.add_argument("--weights", default=None)
    p.add_argument("--private", action="store_true")
    p.set_defaults(func=cmd_push)

    from zoo.cli.train import add_parsers as add_train_parsers
    add_train_parsers(sub)
    from zoo.cli.fvd import add_fvd_parser
    add_fvd_parser(sub)
    from zoo.cli.fvd_stats import add_fvd_stats_parser
    add_fvd_stats_parser(sub)
    from zoo.cli.features import add_features_parser
    add_features_parser(sub)
    from zoo.cli.flow import add_flow_parser
    add_flow_parser(sub)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:  # KEY=VALUE overrides may sit anywhere among train's options
        if args.command == "train" and all("=" in e and not e.startswith("-") for e in extra):
            args.overrides = list(args.overrides) + extra
        else:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        return args.func(args)
    except (ValueError, TypeError, RuntimeError, KeyError, OSError) as e:
        print(f"quovadis {args.command}: error: {e}", file=sys.stderr)
        return 2


