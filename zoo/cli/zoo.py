"""``quovadis zoo build|fetch|list``: fill and show the weights cache.

    quovadis zoo fetch --all                       # on a login node with internet: download, verify, convert
    QUOVADIS_OFFLINE=1 quovadis train ...          # on the compute nodes: everything loads from the cache
    quovadis zoo list                              # source, download size, cached?, reported accuracy
"""
from __future__ import annotations

import sys
import time
from pathlib import Path


def _fetchable(entry) -> bool:
    return entry.arch != "inflated" or entry.hf_repo is not None


def run_fetch(args) -> int:
    from zoo.registry import REGISTRY, get_entry
    from zoo.weights.files import WeightsError
    from zoo.weights.resolve import resolve

    if args.all == bool(args.names):
        raise ValueError("give zoo names to fetch, or --all (not both)")
    names = [n for n, e in REGISTRY.items() if _fetchable(e)] if args.all else list(args.names)
    entries = []
    for name in names:
        entry = get_entry(name)
        components = [get_entry(c) for c in entry.components] if entry.components else [entry]
        for e in components:
            if not _fetchable(e):
                raise ValueError(f"{name}: an inflated 2D network has no video weights to fetch (its 2D weights "
                                 "come from timm/torchvision)")
            if e not in entries:
                entries.append(e)
    failed = 0
    for entry in entries:
        start = time.perf_counter()
        try:
            path = resolve(entry, cache_dir=args.cache_dir, force_download=args.force, source=args.source,
                           quiet=args.quiet)
        except WeightsError as e:
            failed += 1
            print(f"{entry.name}: FAILED: {e}", file=sys.stderr)
            continue
        print(f"{entry.name:36} {path.stat().st_size / 1e6:7.1f} MB  {time.perf_counter() - start:6.1f} s  {path}")
    return 1 if failed else 0


def _source(entry) -> str:
    if entry.variant:
        return f"release:{entry.variant}"
    if entry.components:
        from zoo.registry import get_entry
        return "release:" + "+".join(get_entry(c).variant or c for c in entry.components)
    if entry.hf_repo:
        return f"hub:{entry.hf_repo}"
    return f"{entry.config['source']['kind']} 2D weights"


def _size(entry) -> str:
    from zoo.registry import get_entry
    from zoo.weights import release
    variants = [get_entry(c).variant for c in entry.components] if entry.components else [entry.variant]
    if all(variants):
        total = sum(p.size or 0 for v in variants for p in release.pins(v).values())
        return f"{total / 1e6:.1f} MB"
    return "-"


def run_list(args) -> int:
    from zoo.registry import ALIASES, get_entry, list_models
    from zoo.weights.files import cached_path, quovadis_cache

    print(f"cache: {quovadis_cache(args.cache_dir)}")
    print(f"{'name':36} {'source':32} {'download':>9}  {'cached':6}  reported accuracy")
    for name in list_models(args.pattern):
        entry = get_entry(name)
        if entry.components:
            cached = "yes" if all(cached_path(get_entry(c), args.cache_dir).is_file() for c in entry.components) \
                else "no"
        elif _fetchable(entry):
            cached = "yes" if cached_path(entry, args.cache_dir).is_file() else "no"
        else:
            cached = "-"
        accuracy = ", ".join(f"{k} {v}" for k, v in entry.reported.items()) or "-"
        print(f"{name:36} {_source(entry):32} {_size(entry):>9}  {cached:6}  {accuracy}")
    import fnmatch
    for alias, target in sorted(ALIASES.items()):
        if not fnmatch.fnmatchcase(alias, args.pattern):
            continue
        print(f"{alias:36} = {target} (TF-Hub deepmind/i3d-kinetics-400/1, the FVD network)")
    return 0


def run_build(args) -> int:
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


def add_parser(sub) -> None:
    p = sub.add_parser("zoo", help="zoo maintenance")
    zsub = p.add_subparsers(dest="zoo_command", required=True)
    z = zsub.add_parser("build", help="convert every released checkpoint of a kinetics-i3d checkout into the cache")
    z.add_argument("kinetics_i3d", help="path to a clone of deepmind/kinetics-i3d (or its data/checkpoints)")
    z.add_argument("--cache-dir", default=None)
    z.set_defaults(func=run_build)
    z = zsub.add_parser("fetch", help="download, verify and convert weights into the cache (then work offline)")
    z.add_argument("names", nargs="*", help="zoo names (see `quovadis zoo list`)")
    z.add_argument("--all", action="store_true", help="every entry that has weights to fetch")
    z.add_argument("--source", default="auto", choices=("auto", "release", "hub"),
                   help="auto (default): DeepMind's release, then the Hub")
    z.add_argument("--force", action="store_true", help="fetch again even if cached")
    z.add_argument("--quiet", action="store_true", help="no progress bars")
    z.add_argument("--cache-dir", default=None)
    z.set_defaults(func=run_fetch)
    z = zsub.add_parser("list", help="every zoo entry: source, download size, cached?, reported accuracy")
    z.add_argument("pattern", nargs="?", default="*", help="glob, e.g. 'i3d_*'")
    z.add_argument("--cache-dir", default=None)
    z.set_defaults(func=run_list)
