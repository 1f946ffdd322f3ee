"""``quovadis export NAME -o FILE --format onnx|pt2``: a zoo model or an inflated model file as ONNX or a
``torch.export`` program (:mod:`zoo.models.export`)."""
from __future__ import annotations

from pathlib import Path

from zoo.models.export import FORMATS


def add_parser(sub) -> None:
    """Register ``quovadis export NAME -o FILE``; its handler is :func:`run`."""
    p = sub.add_parser("export", help="export a zoo model or an inflated model file to ONNX or torch.export (pt2)")
    p.add_argument("model", help="a zoo name (quovadis zoo list) or a file saved by `quovadis inflate`")
    p.add_argument("-o", "--output", required=True, help="file to write (.onnx or .pt2)")
    p.add_argument("--format", dest="fmt", default=None, choices=FORMATS,
                   help="onnx (ONNX Runtime, OpenVINO; batch axis dynamic) or pt2 (torch.export); "
                        "default: from the output's extension")
    p.add_argument("--frames", type=int, default=16, help="frames of the traced clip (default 16)")
    p.add_argument("--size", type=int, default=224, help="height and width of the traced clip (default 224)")
    p.add_argument("--weights", default=None, help="local safetensors file for a zoo model (else cache/release/Hub)")
    p.add_argument("--no-pretrained", action="store_true", help="zoo model with random weights (no download)")
    p.set_defaults(func=run)


def run(args) -> int:
    """Load the model, export it, print where it went."""
    from zoo.models.export import export
    fmt = args.fmt or Path(args.output).suffix.lstrip(".")
    if fmt not in FORMATS:
        raise SystemExit(f"export: cannot tell the format of {args.output!r}; pass --format, one of {FORMATS}")
    if Path(args.model).is_file():
        import inflate
        model = inflate.load(args.model)
    else:
        import zoo
        model = zoo.load(args.model, weights=args.weights, pretrained=not args.no_pretrained)
    path = export(model, args.output, fmt, frames=args.frames, size=args.size)
    print(f"export: {args.model} -> {path} ({fmt}, traced on {args.frames}x{args.size}x{args.size}, batch dynamic)")
    return 0
