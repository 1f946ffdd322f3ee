"""GPU check: a few training steps of two-stream I3D at 64x224x224 (bf16 autocast, channels_last_3d), the
fused bf16 inference path, and the data loader's throughput against the step time. Prints one table.

    bash benchmarks/gpu_check.sh            # or: python benchmarks/gpu_check.py --steps 6 --batch 4
"""
from __future__ import annotations

import argparse
import tempfile
import time

import torch
import torch.nn.functional as F

from zoo.models.i3d import InceptionI3d


def timed(fn, steps, sync):
    fn()
    sync()
    t = time.perf_counter()
    for _ in range(steps):
        fn()
    sync()
    return (time.perf_counter() - t) / steps


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=6)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--frames", type=int, default=64)
    p.add_argument("--loader-videos", type=int, default=8)
    args = p.parse_args()
    if not torch.cuda.is_available():
        print("no CUDA device: nothing to check (the CPU paths are covered by the test suite)")
        return 1
    dev = torch.device("cuda")
    sync = torch.cuda.synchronize
    torch.backends.cudnn.benchmark = True
    rows = []
    b, t = args.batch, args.frames
    rgb_net = InceptionI3d(400, 3, dropout=0.5).to(dev).to(memory_format=torch.channels_last_3d)
    flow_net = InceptionI3d(400, 2, dropout=0.5).to(dev).to(memory_format=torch.channels_last_3d)
    params = list(rgb_net.parameters()) + list(flow_net.parameters())
    opt = torch.optim.SGD(params, lr=0.01, momentum=0.9)
    rgb = torch.randn(b, 3, t, 224, 224, device=dev).contiguous(memory_format=torch.channels_last_3d)
    flow = torch.randn(b, 2, t, 224, 224, device=dev).contiguous(memory_format=torch.channels_last_3d)
    y = torch.randint(0, 400, (b,), device=dev)

    def step(precision):
        ctx = torch.autocast("cuda", dtype=torch.bfloat16) if precision == "bf16" else torch.autocast("cuda", enabled=False)
        with ctx:
            loss = F.cross_entropy(rgb_net(rgb).float(), y) + F.cross_entropy(flow_net(flow).float(), y)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    for precision in ("fp32", "bf16"):
        torch.cuda.reset_peak_memory_stats()
        s = timed(lambda: step(precision), args.steps, sync)
        rows.append((f"two-stream train step, {precision}", b / s, torch.cuda.max_memory_allocated() / 2**30, s))
    rgb_net.eval()
    fused = rgb_net.fused(dtype=torch.bfloat16)
    x = rgb[:1, :, :16].to(torch.bfloat16)
    with torch.inference_mode():
        torch.cuda.reset_peak_memory_stats()
        s_ref = timed(lambda: rgb_net(rgb[:1, :, :16]), args.steps, sync)
        s = timed(lambda: fused(x), args.steps, sync)
    rows.append(("I3D RGB inference 1x16x224, fp32", 1 / s_ref, torch.cuda.max_memory_allocated() / 2**30, s_ref))
    rows.append(("I3D RGB inference 1x16x224, fused bf16", 1 / s, torch.cuda.max_memory_allocated() / 2**30, s))

    # data loader throughput (64-frame clips at 224 from generated MP4s) against the bf16 step time
    from torch.utils.data import DataLoader

    from zoo.data.datasets import FolderVideoDataset, collate_skip_corrupt
    from zoo.data.synthetic import make_moving_shapes
    from zoo.data.transforms import train_transform
    with tempfile.TemporaryDirectory() as tmp:
        root = make_moving_shapes(tmp, classes=4, per_class=max(2, args.loader_videos // 4), frames=80, size=256)
        ds = FolderVideoDataset(root, clip_len=t, transform=train_transform(224, 256))
        for workers in (4, 8):
            loader = DataLoader(ds, batch_size=b, num_workers=workers, collate_fn=collate_skip_corrupt, shuffle=True)
            it = iter(loader)
            next(it)
            start, n = time.perf_counter(), 0
            for batch in it:
                n += len(batch["label"])
            s = (time.perf_counter() - start) / max(n, 1) * b
            rows.append((f"data loader, {workers} workers (per batch of {b})", b / s, 0.0, s))
    print(f"\n{torch.cuda.get_device_name()}, torch {torch.__version__}, batch {b}, {t} frames\n")
    print("| what | clips/s | peak GPU memory GiB | seconds per step/batch |")
    print("|---|---|---|---|")
    for name, cps, mem, s in rows:
        print(f"| {name} | {cps:.2f} | {mem:.1f} | {s:.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
