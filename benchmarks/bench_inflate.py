"""Benchmarks for the inflation path, each as a ratio against a baseline measured in the same run.

1. Inflation time of resnet50, convnext_base and vit_base_patch16_224, against building the 2D model
   (timm.create_model) in the same process.
2. Forward of the inflated resnet50 (time_kernel=3) on a 1x3x8x224x224 clip, fp32, contiguous and
   channels_last_3d, against a plain Conv3d ResNet-50 with the same kernels written below.
3. Inference (``zoo.models.inference.InferenceModel``, what ``features`` runs) of the inflated resnet50:
   eager and ``torch.compile`` (inductor, freezing: BatchNorms folded), fp32 and bf16, against the eager
   model and against the plain Conv3d ResNet-50 in the same precision, side by side.

    python benchmarks/bench_inflate.py [--frames 8] [--size 224] [--reps 3] [--threads N] [--skip-inflation]
                                       [--skip-forward] [--skip-inference]
"""
from __future__ import annotations

import argparse
import statistics
import time

import timm
import torch
import torch.nn as nn

import inflate


def best_of(fn, reps: int) -> float:
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def interleaved_best(fns: dict, reps: int) -> dict:
    """Best time of each ``fns[name]()`` over ``reps`` rounds that run them in turn, so all see the same load."""
    best = {name: float("inf") for name in fns}
    for _ in range(reps):
        for name, fn in fns.items():
            best[name] = min(best[name], best_of(fn, 1))
    return best


# --- baseline: a plain Conv3d ResNet-50 (kernels as in inflate's time_kernel=3 on timm's resnet50) ---------
class Bottleneck3d(nn.Module):
    def __init__(self, cin, width, stride, down):
        super().__init__()
        cout = width * 4
        self.conv1, self.bn1 = nn.Conv3d(cin, width, 1, bias=False), nn.BatchNorm3d(width)
        self.conv2 = nn.Conv3d(width, width, 3, (1, stride, stride), 1, bias=False)
        self.bn2 = nn.BatchNorm3d(width)
        self.conv3, self.bn3 = nn.Conv3d(width, cout, 1, bias=False), nn.BatchNorm3d(cout)
        self.down = nn.Sequential(nn.Conv3d(cin, cout, 1, (1, stride, stride), bias=False),
                                  nn.BatchNorm3d(cout)) if down else None
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return self.relu(y + (self.down(x) if self.down is not None else x))


class ResNet50_3d(nn.Module):
    def __init__(self, num_classes=1000):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv3d(3, 64, (3, 7, 7), (1, 2, 2), (1, 3, 3), bias=False), nn.BatchNorm3d(64),
                                  nn.ReLU(inplace=True), nn.MaxPool3d((1, 3, 3), (1, 2, 2), (0, 1, 1)))
        layers, cin = [], 64
        for width, n, stride in ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)):
            for i in range(n):
                layers.append(Bottleneck3d(cin, width, stride if i == 0 else 1, i == 0))
                cin = width * 4
        self.layers = nn.Sequential(*layers)
        self.fc = nn.Linear(2048, num_classes)

    def forward(self, x):
        x = self.layers(self.stem(x))
        return self.fc(x.mean((2, 3, 4)))


def bench_inflation(reps: int):
    rows = []
    for name in ("resnet50", "convnext_base", "vit_base_patch16_224"):
        build = best_of(lambda: timm.create_model(name), reps)
        m = timm.create_model(name)
        infl = best_of(lambda: inflate.inflate(m), reps)
        rows.append((name, build, infl))
    print("\n## Inflation time (best of %d)\n" % reps)
    print("| model | timm.create_model (baseline) | inflate.inflate | ratio |")
    print("|---|---|---|---|")
    for name, build, infl in rows:
        print(f"| {name} | {build * 1000:.0f} ms | {infl * 1000:.0f} ms | {infl / build:.2f}x |")
    return rows


def _resnet50_pair():
    """The inflated timm resnet50 (time_kernel=3) and the plain Conv3d ResNet-50 baseline, in eval mode."""
    torch.manual_seed(0)
    return inflate.inflate(timm.create_model("resnet50"), time_kernel=3).eval(), ResNet50_3d().eval()


@torch.no_grad()
def bench_forward(frames: int, size: int, reps: int):
    ours, base = _resnet50_pair()
    x = torch.randn(1, 3, frames, size, size)
    print(f"\n## Forward, 1x3x{frames}x{size}x{size}, fp32, {torch.get_num_threads()} threads (best of {reps})\n")
    print("| memory format | plain Conv3d ResNet-50 (baseline) | inflated resnet50 | ratio (lower is better) |")
    print("|---|---|---|---|")
    out = []
    for fmt_name, fmt in (("contiguous", torch.contiguous_format), ("channels_last_3d", torch.channels_last_3d)):
        b, xi = base.to(memory_format=fmt), x.to(memory_format=fmt)
        o = ours.to_channels_last() if fmt == torch.channels_last_3d else ours
        b(xi), o(xi)  # warm-up
        t = interleaved_best({"base": lambda: b(xi), "ours": lambda: o(xi)}, reps)
        tb, to = t["base"], t["ours"]
        print(f"| {fmt_name} | {tb * 1000:.0f} ms | {to * 1000:.0f} ms | {to / tb:.2f}x |")
        out.append((fmt_name, tb, to))
    return out


@torch.no_grad()
def bench_inference(frames: int, size: int, reps: int):
    from zoo.models.inference import InferenceModel
    ours, base = _resnet50_pair()
    x = torch.randn(2, 3, frames, size, size)
    print(f"\n## Inference (InferenceModel), 2x3x{frames}x{size}x{size}, {torch.get_num_threads()} threads "
          f"(best of {reps}, after warm-up; compile time listed apart)\n")
    print("| precision | plain Conv3d ResNet-50, eager | inflated, eager | inflated, compiled | compiled vs eager | "
          "compiled vs plain Conv3d | compile time |")
    print("|---|---|---|---|---|---|---|")
    rows = []
    for precision in ("fp32", "bf16"):
        runners = {}
        for name, model, compile in (("plain", base, False), ("eager", ours, False), ("compiled", ours, True)):
            runners[name] = InferenceModel(model, device="cpu", precision=precision, compile=compile)
        start = time.perf_counter()
        runners["compiled"](x)  # compiles
        compile_s = time.perf_counter() - start
        if runners["compiled"].forward.failed:
            print(f"| {precision} | compile failed: {runners['compiled'].forward.failed} |")
            continue
        for r in ("plain", "eager"):
            runners[r](x)  # warm-up
        t = interleaved_best({name: (lambda r=r: r(x)) for name, r in runners.items()}, reps)
        print(f"| {precision} | {t['plain'] * 1000:.0f} ms | {t['eager'] * 1000:.0f} ms | {t['compiled'] * 1000:.0f} ms "
              f"| {t['eager'] / t['compiled']:.2f}x faster | {t['plain'] / t['compiled']:.2f}x faster | "
              f"{compile_s:.0f} s |")
        rows.append((precision, t, compile_s))
    return rows


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--frames", type=int, default=8)
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--skip-inflation", action="store_true")
    p.add_argument("--skip-forward", action="store_true")
    p.add_argument("--skip-inference", action="store_true")
    args = p.parse_args()
    from zoo.models.host_memory import keep_freed_memory
    keep_freed_memory()  # as the inference commands do (zoo/models/host_memory.py)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, timm {timm.__version__}")
    if not args.skip_inflation:
        bench_inflation(args.reps)
    if not args.skip_forward:
        bench_forward(args.frames, args.size, args.reps)
    if not args.skip_inference:
        bench_inference(args.frames, args.size, args.reps)


if __name__ == "__main__":
    main()
