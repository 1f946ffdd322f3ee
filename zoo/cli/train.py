"""``quovadis train`` and ``quovadis evaluate``."""
from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import torch


def run_train(args) -> int:
    from zoo.train.config import load_config
    from zoo.train.loop import train
    from zoo.train.splits import build_splits
    from zoo.data.datasets import collate_skip_corrupt

    cfg = load_config(args.config, args.overrides)
    splits = build_splits(cfg, validate=not args.no_val)
    cfg.data.classes = splits.classes  # recorded in the run's config.json; evaluation numbers the test split by it
    classes = splits.classes
    result = train(cfg, splits.train, splits.val, len(classes), classes, resume=args.resume,
                   collate_fn=collate_skip_corrupt)
    summary = {k: v for k, v in result.items() if k not in ("model", "per_class")}
    if int(os.environ.get("RANK", "0")) == 0:  # under torchrun: one summary, from rank 0
        print(json.dumps({"run": cfg.out, **summary}, default=float))
    return 0


def run_evaluate(args) -> int:
    """Evaluate one run (or several, fused late). Under ``torchrun`` each rank evaluates its share of the
    videos (DistributedSampler; duplicates from its padding removed) and only rank 0 writes and prints.
    Weights come from the run's safetensors file, so a shared run folder never runs code on load."""
    from zoo.train.distributed import init_world, shutdown
    from zoo.train.reproducibility import configure_backends

    configure_backends(False, cuda=torch.cuda.is_available())
    world = init_world("auto")
    try:
        return _evaluate_runs(args, world)
    finally:
        shutdown(world)


def _evaluate_runs(args, world) -> int:
    from zoo.train.build import build_model
    from zoo.train.checkpoint import load_run_weights
    from zoo.train.config import from_dict
    from zoo.train.data import build_dataset
    from zoo.train.loop import evaluate, make_loader
    from zoo.train.metrics import fuse, save_confusion_png, summarize
    from zoo.data.datasets import collate_skip_corrupt

    runs = [Path(args.run)] + [Path(r) for r in args.fuse]
    preds, sources = [], []
    for run in runs:
        cfg_path = run / "config.json"
        if not cfg_path.is_file():
            raise FileNotFoundError(f"{run} is not a training run (no config.json)")
        cfg = from_dict(json.loads(cfg_path.read_text()))
        cfg.data.test_clips = args.clips or cfg.data.test_clips
        cfg.data.test_crops = args.crops or cfg.data.test_crops
        cfg.model.pretrained = False
        which = _checkpoint_choice(run, cfg, args.checkpoint)
        weights, _, ckpt = load_run_weights(run, which)
        classes = cfg.data.classes
        if classes is None:
            warnings.warn(f"{run} records no class list (trained before classes were saved); numbering the test "
                          "split by its own labels, which is wrong if it lacks a training class", stacklevel=2)
        dataset = build_dataset(cfg, "test", test_views=True, classes=classes)
        model = build_model(cfg, len(dataset.classes))
        model.load_state_dict(weights)
        model.to(world.device)
        if not getattr(args, "exact", False) and hasattr(model, "fused"):  # the fast path; cfg.precision's autocast still applies
            model = model.fused(channels_last=cfg.channels_last)
            if world.is_main:
                import sys
                print(f"{run}: fast path: fused I3D (BatchNorm folded, 1x1 convs merged); --exact for the unfused "
                      "model", file=sys.stderr)
        batch_size = 1 if cfg.data.test_clips == "all" else args.batch_size or cfg.data.batch_size  # views vary
        loader, _ = make_loader(dataset, world, cfg, False, collate_skip_corrupt, batch_size)
        metrics, p = evaluate(model, loader, cfg, world, dataset.classes)
        preds.append((p, dataset.classes))
        sources.append({"run": str(run), "checkpoint": str(ckpt), "split": _test_split_name(cfg),
                        "checkpoint_chosen_on": _chosen_on(cfg) if which == "best" else "none (last checkpoint)",
                        "modality": cfg.data.modality, "test_clips": cfg.data.test_clips,
                        "test_crops": cfg.data.test_crops})
        if not world.is_main:
            continue
        torch.save(p, run / "test_predictions.pt")
        print(f"{run}: checkpoint {ckpt.name} on {sources[-1]['split']}")
        print(f"{run}: {cfg.data.modality}, {cfg.data.test_clips} clip(s) x {cfg.data.test_crops} crop(s): "
              f"top1 {metrics['top1']:.2f}%  top5 {metrics['top5']:.2f}%  mean-class {metrics['mean_class_acc']:.2f}%"
              f"  ({metrics['num_videos']} videos, {metrics['skipped']} skipped)")
    if not world.is_main:
        return 0
    classes = preds[0][1]
    if len(runs) > 1:
        weights = [float(w) for w in args.weights.split(",")] if args.weights else [1.0] * len(runs)
        fused = fuse([p for p, _ in preds], weights)
        metrics = summarize(fused["logits"], fused["labels"], classes)
        print(f"fused ({', '.join(f'{w:g} x {r}' for w, r in zip(weights, runs))}): top1 {metrics['top1']:.2f}%  "
              f"top5 {metrics['top5']:.2f}%  mean-class {metrics['mean_class_acc']:.2f}%")
    else:
        metrics = summarize(preds[0][0]["logits"], preds[0][0]["labels"], classes)
    out = Path(args.out or runs[0])
    out.mkdir(parents=True, exist_ok=True)
    save_confusion_png(metrics["confusion"], out / "confusion_eval.png", classes)
    report = {"evaluated": sources, **{k: v for k, v in metrics.items() if k != "confusion"}}
    (out / "eval_report.json").write_text(json.dumps(report, indent=2))
    print("per class:")
    for name, row in sorted(metrics["per_class"].items(), key=lambda kv: kv[1]["acc"]):
        print(f"  {row['acc']:6.1f}%  (n={row['support']:3d})  {name}")
    print(f"wrote {out / 'eval_report.json'} and {out / 'confusion_eval.png'}")
    return 0


def _test_split_name(cfg) -> str:
    d = cfg.data
    split = "val" if d.format == "kinetics" else "test"  # Kinetics' test labels are withheld (zoo.train.data)
    return f"the {d.format} {split} split" + (f" {d.split}" if d.format in ("ucf101", "hmdb51") else "") + \
        f" ({d.annotations or d.root})"


def _chosen_on(cfg) -> str:
    d = cfg.data
    if d.val_list:
        return f"the validation list {d.val_list}"
    return f"{d.val_fraction:g} of the training list held out (seed {cfg.seed})"


def _checkpoint_choice(run: Path, cfg, which: str) -> str:
    """``last`` (default) or ``best``; best exists only for runs validated on a split the test never sees."""
    if which == "best" and not (run / "best.safetensors").is_file() and not (run / "best.pt").is_file():
        from zoo.train.splits import describe_validation
        name, selects = describe_validation(cfg)
        why = ("it validated on the test split, which must not choose a checkpoint" if not selects
               else "no validation has run yet")
        raise FileNotFoundError(f"{run} has no best checkpoint: {why}. Evaluate --checkpoint last, or train with "
                                "data.val_fraction=0.1 (held out from training) or data.val_list=VAL.csv")
    return which


def _clips(text: str):
    return text if text == "all" else int(text)


def add_parser(sub) -> None:
    p = sub.add_parser("train", help="train or fine-tune a model (one stream) from a config file")
    p.add_argument("--config", default=None, help="YAML/TOML/JSON config (see zoo.train.config)")
    p.add_argument("overrides", nargs="*", help="KEY=VALUE overrides, e.g. optim.lr=0.01 data.clip_len=32")
    p.add_argument("--resume", default=None, help="a checkpoint, a run folder, or 'auto' (OUT/last.pt)")
    p.add_argument("--no-val", action="store_true",
                   help="run no validation, also with data.val_fraction or data.val_list set (held-out videos "
                        "still stay out of training)")
    p.set_defaults(func=run_train)

    p = sub.add_parser("evaluate", help="multi-view test of a run; --fuse another run for two-stream")
    p.add_argument("--run", required=True)
    p.add_argument("--fuse", nargs="*", default=[], help="more runs to fuse late (e.g. the flow run)")
    p.add_argument("--weights", default=None, help="fusion weights, e.g. 1,1.5")
    p.add_argument("--clips", type=_clips, default=None,
                   help="clips per video, or 'all': ceil(T / clip_len) covering the whole video (I3D)")
    p.add_argument("--checkpoint", choices=["last", "best"], default="last",
                   help="last (default) or best: chosen on data.val_fraction/val_list, never on the test split")
    p.add_argument("--crops", type=int, default=None, choices=[1, 3])
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--out", default=None)
    p.add_argument("--exact", action="store_true", help="the unfused fp32 model (default: I3D's fused fast path)")
    p.set_defaults(func=run_evaluate)
