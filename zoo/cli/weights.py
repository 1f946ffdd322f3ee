"""``quovadis zoo fetch`` and ``quovadis zoo list``: fill and show the weights cache.

    quovadis zoo fetch --all                       # on a login node with internet: download, verify, convert
    QUOVADIS_OFFLINE=1 quovadis train ...          # on the compute nodes: everything loads from the cache
    quovadis zoo list                              # source, download size, cached?, reported accuracy
"""
from __future__ import annotations

import sys
import time


def _fetchable(entry) -> bool:
    return entry.arch != "inflated" or entry.hf_repo is not None


def cmd_zoo_fetch(args) -> int:
    from zoo.registry import REGISTRY, get_entry
    from zoo.weights.resolve import resolve
    from zoo.weights.files import WeightsError

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
    from zoo.weights import release
    from zoo.registry import get_entry
    variants = [get_entry(c).variant for c in entry.components] if entry.components else [entry.variant]
    if all(variants):
        total = sum(p.size or 0 for v in variants for p in release.pins(v).values())
        return f"{total / 1e6:.1f} MB"
    return "-"


def cmd_zoo_list(args) -> int:
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


def add_parsers(zsub) -> None:
    """Register ``zoo fetch`` and ``zoo list`` under the ``zoo`` command's subparsers."""
    z = zsub.add_parser("fetch", help="download, verify and convert weights into the cache (then work offline)")
    z.add_argument("names", nargs="*", help="zoo names (see `quovadis zoo list`)")
    z.add_argument("--all", action="store_true", help="every entry that has weights to fetch")
    z.add_argument("--source", default="auto", choices=("auto", "release", "hub"),
                   help="auto (default): DeepMind's release, then the Hub")
    z.add_argument("--force", action="store_true", help="fetch again even if cached")
    z.add_argument("--quiet", action="store_true", help="no progress bars")
    z.add_argument("--cache-dir", default=None)
    z.set_defaults(func=cmd_zoo_fetch)
    z = zsub.add_parser("list", help="every zoo entry: source, download size, cached?, reported accuracy")
    z.add_argument("pattern", nargs="?", default="*", help="glob, e.g. 'i3d_*'")
    z.add_argument("--cache-dir", default=None)
    z.set_defaults(func=cmd_zoo_list)
