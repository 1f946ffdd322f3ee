"""I3D forward on the CPU at 1x3x16x224x224: quovadis against a port that pads dynamically in every call.

The baseline below is written the way the popular PyTorch ports (piergiaj/pytorch-i3d and its copies) do
it: every conv and pool computes its TF "SAME" padding in forward and runs F.pad on the input, then an
unfused BatchNorm, in contiguous memory. Same weights, so the outputs are compared too.

    python benchmarks/bench_i3d.py [--frames 16] [--size 224] [--reps 3]
"""
from __future__ import annotations

import argparse
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

from zoo.models.i3d import InceptionI3d, MaxPoolSame, Unit3D


def dynamic_pad(x, kernel, stride, value=0.0):
    pads = []
    for size, k, s in zip(reversed(x.shape[2:]), reversed(kernel), reversed(stride)):
        total = max(k - s, 0) if size % s == 0 else max(k - size % s, 0)
        pads += [total // 2, total - total // 2]
    return F.pad(x, pads, value=value)


class DynUnit(nn.Module):
    def __init__(self, unit: Unit3D):
        super().__init__()
        self.unit = unit

    def forward(self, x):
        u = self.unit
        x = F.conv3d(dynamic_pad(x, u.kernel, u.stride), u.conv.weight, u.conv.bias, u.stride)
        if u.bn is not None:
            x = u.bn(x)
        return F.relu(x) if u.relu else x


class DynPool(nn.Module):
    def __init__(self, pool: MaxPoolSame):
        super().__init__()
        self.pool = pool

    def forward(self, x):
        # the ports pad max pools with zeros (after ReLU this equals -inf padding)
        return F.max_pool3d(dynamic_pad(x, self.pool.kernel, self.pool.stride), self.pool.kernel, self.pool.stride)


def dynamic_port(model: InceptionI3d) -> nn.Module:
    import copy
    port = copy.deepcopy(model)
    for name, m in list(port.named_modules()):
        for child_name, child in list(m.named_children()):
            if isinstance(child, Unit3D):
                setattr(m, child_name, DynUnit(child))
            elif isinstance(child, MaxPoolSame):
                setattr(m, child_name, DynPool(child))
    return port


def best_of(fn, reps):
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


@torch.no_grad()  # not inference_mode: fused() would then hold inference tensors, which skip the pre-packed CPU path
def main():
    p = argparse.ArgumentParser()
    p.add_argument("--frames", type=int, default=16)
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--reps", type=int, default=5)
    args = p.parse_args()
    torch.manual_seed(0)
    model = InceptionI3d().eval()
    for m in model.modules():  # non-trivial BatchNorm statistics
        if hasattr(m, "running_var"):
            m.running_var.uniform_(0.5, 2.0)
            m.running_mean.normal_(0, 0.1)
    x = torch.rand(1, 3, args.frames, args.size, args.size) * 2 - 1
    baseline = dynamic_port(model)
    fast = model.fused()  # BN folded, 1x1 convs merged, channels_last_3d
    fast_bf16 = model.fused(dtype=torch.bfloat16, space_to_depth=True)  # as InferenceModel runs bf16 on the CPU
    xc = x.contiguous(memory_format=torch.channels_last_3d)
    xb = xc.to(torch.bfloat16)
    y_ref = baseline(x)
    variants = [
        ("baseline: dynamic F.pad every call (piergiaj-style)", lambda: baseline(x)),
        ("quovadis InceptionI3d, fp32", lambda: model(x)),
        ("quovadis .fused(): BN folded, 1x1 merged, channels_last_3d, fp32", lambda: fast(xc)),
        ("quovadis .fused(dtype=torch.bfloat16, space_to_depth=True)", lambda: fast_bf16(xb)),
    ]
    print(f"I3D forward 1x3x{args.frames}x{args.size}x{args.size}, CPU, {torch.get_num_threads()} threads, "
          f"best of {args.reps}\n")
    print("| variant | time | speed vs baseline | max abs diff vs baseline | same top-1 |")
    print("|---|---|---|---|---|")
    outputs = {name: fn().float() for name, fn in variants}  # also the warm-up
    best = {name: float("inf") for name, _ in variants}
    for _ in range(args.reps):  # interleaved, so every variant sees the same machine load
        for name, fn in variants:
            best[name] = min(best[name], best_of(fn, 1))
    t_base = best[variants[0][0]]
    for name, _ in variants:
        y, t = outputs[name], best[name]
        diff = (y - y_ref).abs().max().item()
        same = bool((y.argmax(-1) == y_ref.argmax(-1)).all())
        print(f"| {name} | {t * 1000:.0f} ms | {t_base / t:.2f}x | {diff:.2e} | {same} |")


if __name__ == "__main__":
    main()
