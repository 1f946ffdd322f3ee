"""TV-L1 optical flow in PyTorch, batched over frame pairs, reproducing OpenCV's ``DualTVL1OpticalFlow``.

    flow = tvl1_flow(frames0, frames1)                  # (N, H, W) each -> (N, H, W, 2), x right, y down
    flow = tvl1_flow(frames0.cuda(), frames1.cuda(), variant="cuda")

The algorithm and its defaults are OpenCV's (Zach, Pock & Bischof's duality-based TV-L1, in Sanchez et
al.'s implementation, ``opencv_contrib/modules/optflow/src/tvl1flow.cpp``): tau 0.25, lambda 0.15,
theta 0.3, 5 scales, 5 warps, epsilon 0.01, scale step 0.8, gamma 0. Step by step, as OpenCV does it:

* frames on a 0-255 float32 scale (uint8 as is; float frames are taken in [0, 1] and times 255, as OpenCV);
* a pyramid of ``cv2.resize(..., fx=scaleStep, fy=scaleStep, INTER_LINEAR)`` images (half-pixel
  centres, no anti-aliasing, size rounded), each from the previous one, stopping at the first level
  below 16 px on a side; the coarsest flow starts at zero;
* per scale: gradients of I1 by central differences (half the one-sided difference at the borders),
  the dual variable p reset to zero, then ``warps`` times: warp I1 and its gradients to
  ``x + u`` with a bicubic remap, ``rho_c = I1w - I1wx u1 - I1wy u2 - I0``, and iterate
  (thresholding with ``lambda * theta``, backward-difference divergence of p, ``u = v + theta div p``,
  forward gradient of u, ``p = (p + tau/theta grad u) / (1 + tau/theta |grad u|)``);
* between scales the flow is resized (INTER_LINEAR) to the finer size and divided by ``scaleStep``.

The two OpenCV flavours differ, and ``variant`` picks one:

=============  ==========================================  ==========================================
               ``"cpu"`` (``cv2.optflow.DualTVL1...``)     ``"cuda"`` (``cv2.cuda.OpticalFlowDual_TVL1``)
=============  ==========================================  ==========================================
iterations     ``outer_iterations`` (10) x                 ``iterations`` (300) per warp
               ``inner_iterations`` (30) per warp
median         5x5 median of u (replicated border) at the   none
               start of every outer iteration
warp kernel    Keys cubic a = -0.75 (``cv2.remap``          Keys cubic a = -0.5, weights normalised
               INTER_CUBIC), zero outside the image        to sum 1, clamped border
stopping       mean squared change of u < epsilon^2,       the same rule, tested only at odd
               tested after every iteration                iterations while a running estimate says
                                                           it may hold (OpenCV's CUDA heuristic)
=============  ==========================================  ==========================================

OpenCV 5's ``cv2.remap`` (the reference here, tested) samples at the exact positions; OpenCV 4.x rounded
them to 1/32 px (``warp_cubic(..., quantize=True)``). ``compile=True`` runs the iteration and the median
through ``torch.compile`` (meant for GPUs, where it removes launch overhead; untested on a GPU here, and on
the 2-core CPU here it was slower than eager, whose in-place step reuses its buffers).

Stopping and batching: OpenCV stops one image's iterations (for the current warp) once
``sum |u_new - u|^2 <= epsilon^2 * H * W``. Here every sample carries a "still running" flag computed
on the device; a sample whose flag dropped is frozen (its u and p are no longer updated) while the
others go on, so each sample follows OpenCV's rule exactly and the batch never waits on the host.
Leaving the loop early when every sample has stopped needs a host sync: ``check_every`` sets how
often it is tested (default: every iteration on the CPU, where it is free; every 30 on other devices).
With ``check_every=1`` stopped samples leave the batch instead of being masked (less work; same flow,
tested). ``stopping="fixed"`` drops the rule and always runs every iteration (OpenCV with
``epsilon=0``): no masks and no host syncs at all.

Agreement with OpenCV is not bitwise: float rounding differs (e.g. in the bicubic sums), and the
stopping rule turns a tiny difference into one more or one fewer iteration now and then. Measured on
the release's cricket clip at 224x224 (16 pairs): mean end-point error 0.009-0.010 px, 99th percentile 0.08 px;
with ``epsilon=0`` on both sides (no stopping rule) it is 0.0002 px (8 pairs of the clip at 64x64).
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field, replace

import numpy as np
import torch
import torch.nn.functional as F

VARIANTS = ("cpu", "cuda")
STOPPING = ("epsilon", "fixed")
_REMAP_TAB = 32  # cv2.remap quantises sub-pixel positions to 1/INTER_TAB_SIZE
_FLT_EPSILON = float(np.finfo(np.float32).eps)


@dataclass(frozen=True)
class TVL1Params:
    """OpenCV's ``DualTVL1OpticalFlow`` parameters and defaults (``gamma`` is 0 and not supported).
    ``iterations`` is the CUDA flavour's per-warp count; the CPU flavour uses ``outer x inner``."""
    tau: float = 0.25
    lambda_: float = 0.15
    theta: float = 0.3
    nscales: int = 5
    warps: int = 5
    epsilon: float = 0.01
    inner_iterations: int = 30
    outer_iterations: int = 10
    scale_step: float = 0.8
    median_filtering: int = 5
    iterations: int = 300

    def __post_init__(self):
        if self.nscales < 1 or self.warps < 1:
            raise ValueError(f"nscales and warps must be >= 1, got {self.nscales} and {self.warps}")
        if not 0 < self.scale_step < 1:
            raise ValueError(f"scale_step must be in (0, 1), got {self.scale_step}")
        if self.median_filtering not in (0, 1, 3, 5):
            raise ValueError(f"median_filtering must be 0/1 (off), 3 or 5 (as cv2.medianBlur on float), "
                             f"got {self.median_filtering}")


# ------------------------------------------------------------------------------------ resizing
def _linear_matrix(n_in: int, n_out: int, scale: float) -> np.ndarray:
    """(n_out, n_in) weights of cv2.resize INTER_LINEAR along one axis, ``scale`` = in/out step:
    ``src = (dst + 0.5) * scale - 0.5``, clamped to the first/last pixel."""
    m = np.zeros((n_out, n_in), np.float32)
    for d in range(n_out):
        f = np.float32((d + 0.5) * scale - 0.5)
        s = math.floor(f)
        f = np.float32(f - s)
        if s < 0:
            s, f = 0, np.float32(0)
        if s >= n_in - 1:
            s, f = n_in - 1, np.float32(0)
        m[d, s] += np.float32(1) - f
        if f:
            m[d, s + 1] += f
    return m


def resize_linear(x: torch.Tensor, size: tuple[int, int], scale: tuple[float, float] | None = None) -> torch.Tensor:
    """``cv2.resize(x, (w, h), fx, fy, INTER_LINEAR)`` of the last two dims of ``x``. ``scale`` is
    OpenCV's (fx, fy) when the size came from them; by default the size ratio."""
    h_in, w_in = x.shape[-2:]
    h, w = size
    fx, fy = scale if scale is not None else (w / w_in, h / h_in)
    my = torch.from_numpy(_linear_matrix(h_in, h, 1.0 / fy)).to(x.device)
    mx = torch.from_numpy(_linear_matrix(w_in, w, 1.0 / fx)).to(x.device)
    return my @ x @ mx.T


def pyramid_sizes(h: int, w: int, nscales: int, scale_step: float) -> list[tuple[int, int]]:
    """Sizes of OpenCV's TV-L1 pyramid, finest first: each level ``round(previous * scale_step)``,
    stopping before the first level below 16 px on a side."""
    sizes = [(h, w)]
    for _ in range(1, nscales):
        ph, pw = sizes[-1]
        nh, nw = round(ph * scale_step), round(pw * scale_step)
        if nh < 16 or nw < 16:
            break
        sizes.append((nh, nw))
    return sizes


# ------------------------------------------------------------------------------------ warping
def _keys_cubic(t: torch.Tensor, a: float) -> list[torch.Tensor]:
    """The four Keys cubic weights of taps at offsets -1, 0, 1, 2 for fractional position ``t``
    (OpenCV's ``interpolateCubic`` arrangement: the last weight makes them sum to one)."""
    c0 = ((a * (t + 1) - 5 * a) * (t + 1) + 8 * a) * (t + 1) - 4 * a
    c1 = ((a + 2) * t - (a + 3)) * t * t + 1
    c2 = ((a + 2) * (1 - t) - (a + 3)) * (1 - t) * (1 - t) + 1
    return [c0, c1, c2, 1 - c0 - c1 - c2]


def _cuda_cubic(t: torch.Tensor) -> list[torch.Tensor]:
    """OpenCV CUDA TV-L1's ``bicubicCoeff`` (a = -0.5) at distances t+1, t, 1-t, 2-t."""
    def coeff(x):
        near = x * x * (1.5 * x - 2.5) + 1.0
        far = x * (x * (-0.5 * x + 2.5) - 4.0) + 2.0
        return torch.where(x <= 1, near, torch.where(x < 2, far, torch.zeros_like(x)))
    return [coeff(t + 1), coeff(t), coeff(1 - t), coeff(2 - t)]


def warp_cubic(images: torch.Tensor, u: torch.Tensor, variant: str = "cpu", quantize: bool = False) -> torch.Tensor:
    """Sample ``images`` (N, C, H, W) at ``(x + u1, y + u2)`` with ``u`` (N, 2, H, W), bicubically:
    ``variant="cpu"`` is OpenCV 5's ``cv2.remap(INTER_CUBIC, BORDER_CONSTANT 0)`` (a = -0.75; with
    ``quantize`` positions are rounded to 1/32 px first, as OpenCV 4.x's remap tables do); ``"cuda"`` is
    OpenCV CUDA TV-L1's warp (a = -0.5, normalised weights, clamped border)."""
    n, c, h, w = images.shape
    dev = images.device
    xs = torch.arange(w, device=dev, dtype=torch.float32).view(1, 1, w)
    ys = torch.arange(h, device=dev, dtype=torch.float32).view(1, h, 1)
    mx, my = xs + u[:, 0], ys + u[:, 1]
    if variant == "cpu" and quantize:
        qx = torch.round(mx * _REMAP_TAB).to(torch.int64)
        qy = torch.round(my * _REMAP_TAB).to(torch.int64)
        x0, y0 = torch.div(qx, _REMAP_TAB, rounding_mode="floor"), torch.div(qy, _REMAP_TAB, rounding_mode="floor")
        tx = (qx - x0 * _REMAP_TAB).to(torch.float32) * (1.0 / _REMAP_TAB)
        ty = (qy - y0 * _REMAP_TAB).to(torch.float32) * (1.0 / _REMAP_TAB)
        wx, wy = _keys_cubic(tx, -0.75), _keys_cubic(ty, -0.75)
    elif variant == "cpu":
        fx, fy = torch.floor(mx), torch.floor(my)
        x0, y0 = fx.to(torch.int64), fy.to(torch.int64)
        wx, wy = _keys_cubic(mx - fx, -0.75), _keys_cubic(my - fy, -0.75)
    else:
        fx, fy = torch.floor(mx), torch.floor(my)
        x0, y0 = fx.to(torch.int64), fy.to(torch.int64)
        wx, wy = _cuda_cubic(mx - fx), _cuda_cubic(my - fy)
    if variant == "cpu":   # constant-0 border: one ring of zeros, taps clamped onto it
        src, pw, lo, hi_x, hi_y = F.pad(images, (1, 1, 1, 1)), w + 2, -1, w, h
    else:                  # clamped border
        src, pw, lo, hi_x, hi_y = images, w, 0, w - 1, h - 1
    flat = src.reshape(n, c, -1)
    off = 1 if variant == "cpu" else 0
    cols = [(x0 + (i - 1)).clamp_(lo, hi_x) + off for i in range(4)]
    out = images.new_zeros(n, c, h, w)
    for j in range(4):
        row = ((y0 + (j - 1)).clamp_(lo, hi_y) + off) * pw
        acc = images.new_zeros(n, c, h, w)
        for i in range(4):
            idx = (row + cols[i]).view(n, 1, h * w).expand(n, c, h * w)
            acc.addcmul_(wx[i].unsqueeze(1), torch.gather(flat, 2, idx).view(n, c, h, w))
        out.addcmul_(wy[j].unsqueeze(1), acc)
    if variant == "cuda":
        out /= ((wx[0] + wx[1] + wx[2] + wx[3]) * (wy[0] + wy[1] + wy[2] + wy[3])).unsqueeze(1)
    return out


# ------------------------------------------------------------------------------------ finite differences
def centered_gradient(img: torch.Tensor) -> torch.Tensor:
    """(N, H, W) -> (N, 2, H, W): ``0.5 * (I[x+1] - I[x-1])`` inside, ``0.5 * (I[1] - I[0])`` (and
    mirrored) at the borders, as OpenCV's ``centeredGradient``."""
    p = F.pad(img.unsqueeze(1), (1, 1, 1, 1), mode="replicate").squeeze(1)
    dx = 0.5 * (p[:, 1:-1, 2:] - p[:, 1:-1, :-2])
    dy = 0.5 * (p[:, 2:, 1:-1] - p[:, :-2, 1:-1])
    return torch.stack([dx, dy], 1)


def forward_gradient(u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(u[x+1] - u[x], u[y+1] - u[y])`` over the last two dims, zero on the last column / row."""
    ux = F.pad(u[..., 1:] - u[..., :-1], (0, 1))
    uy = F.pad(u[..., 1:, :] - u[..., :-1, :], (0, 0, 0, 1))
    return ux, uy


def divergence(px: torch.Tensor, py: torch.Tensor) -> torch.Tensor:
    """Backward-difference divergence with ``p[-1] = 0`` (OpenCV's ``divergence``)."""
    return (px - F.pad(px[..., :-1], (1, 0))) + (py - F.pad(py[..., :-1, :], (0, 0, 1, 0)))


def _batcher_merges(n: int, first: int) -> list[tuple[int, int]]:
    """Comparators (low wire, high wire) of Batcher's odd-even merge sort of ``n`` (a power of 2)
    wires, from the merge of sorted runs of length ``first`` on."""
    pairs, p = [], first
    while p < n:
        k = p
        while k >= 1:
            for j in range(k % p, n - k, 2 * k):
                for i in range(min(k, n - j - k)):
                    if (i + j) // (2 * p) == (i + j + k) // (2 * p):
                        pairs.append((i + j, i + j + k))
            k //= 2
        p *= 2
    return pairs


def _median_network(k: int) -> tuple[list[tuple[str, int, int, int]], int]:
    """A min/max program giving the median of ``k`` sorted columns of ``k`` values (value ``c*k + r``
    is row r of column c): Batcher's merges of the columns (each padded to a power of two with +inf),
    with the comparators that touch only padding or do not reach the median removed.
    Returns ``([(op, out_id, a_id, b_id), ...], median_id)``."""
    run = 1 << (k - 1).bit_length()
    wires: list[int | None] = [None] * (run * run)  # None: +inf padding
    for c in range(k):
        for r in range(k):
            wires[c * run + r] = c * k + r
    ops, nxt = [], k * k
    for i, j in _batcher_merges(run * run, run):
        a, b = wires[i], wires[j]
        if b is None:
            continue  # min(a, inf) = a stays on the low wire
        if a is None:
            wires[i], wires[j] = b, None
            continue
        ops += [("min", nxt, a, b), ("max", nxt + 1, a, b)]
        wires[i], wires[j] = nxt, nxt + 1
        nxt += 2
    out = wires[(k * k) // 2]
    need, kept = {out}, []
    for op in reversed(ops):
        if op[1] in need:
            kept.append(op)
            need.update(op[2:])
    return kept[::-1], out


_MEDIAN_PROGRAMS = {k: _median_network(k) for k in (3, 5)}  # what cv2.medianBlur allows on float


def _sort_columns(cols: list[torch.Tensor]) -> list[torch.Tensor]:
    """Sort a short list of tensors elementwise (odd-even transposition, k rounds)."""
    cols = list(cols)
    for r in range(len(cols)):
        for i in range(r % 2, len(cols) - 1, 2):
            lo, hi = torch.minimum(cols[i], cols[i + 1]), torch.maximum(cols[i], cols[i + 1])
            cols[i], cols[i + 1] = lo, hi
    return cols


def median_blur(u: torch.Tensor, k: int = 5) -> torch.Tensor:
    """``cv2.medianBlur(u, k)`` on float32 (exact k x k median, replicated border) of the last two dims.
    Each column of k values is sorted once (shared by the k windows that contain it), then a pruned
    merge network selects the median: ~170 elementwise min/max for k = 5, no sort, no unfold copy."""
    shape = u.shape
    h, w = shape[-2:]
    r = k // 2
    x = F.pad(u.reshape(-1, 1, h, w), (r, r, r, r), mode="replicate").squeeze(1)
    cols = _sort_columns([x[:, i:i + h] for i in range(k)])          # each (B, h, w + 2r), sorted over i
    # contiguous copies: min/max over strided column slices run several times slower than the copies cost
    vals: dict[int, torch.Tensor] = {c * k + i: cols[i][:, :, c:c + w].contiguous() for c in range(k) for i in range(k)}
    program, out = _MEDIAN_PROGRAMS[k]
    last = {v: i for i, (_, _, a, b) in enumerate(program) for v in (a, b)}
    pool: list[torch.Tensor] = []              # dead values' tensors, reused (no fresh allocations)
    for i, (op, dst, a, b) in enumerate(program):
        res = pool.pop() if pool else torch.empty_like(vals[a])
        vals[dst] = (torch.minimum if op == "min" else torch.maximum)(vals[a], vals[b], out=res)
        for v in (a, b):
            if last[v] == i:
                pool.append(vals.pop(v))
    return vals[out].reshape(shape)


# ------------------------------------------------------------------------------------ the solver
def _to_gray255(frames: torch.Tensor, name: str) -> torch.Tensor:
    if frames.dim() == 2:
        frames = frames.unsqueeze(0)
    if frames.dim() != 3:
        raise ValueError(f"{name} must be grayscale frames (N, H, W) or one frame (H, W), got shape "
                         f"{tuple(frames.shape)}; convert colour with cv2.cvtColor(..., COLOR_RGB2GRAY) first")
    if frames.dtype == torch.uint8:
        return frames.to(torch.float32)
    if not frames.is_floating_point():
        raise ValueError(f"{name} must be uint8 (0-255) or float (0-1, as OpenCV), got {frames.dtype}")
    return frames.to(torch.float32) * 255.0


def tvl1_flow(frames0, frames1, *, variant: str = "cpu", stopping: str = "epsilon",
              params: TVL1Params | None = None, check_every: int | None = None, compile: bool = False,
              **overrides) -> torch.Tensor:
    """TV-L1 flow from ``frames0`` to ``frames1`` (grayscale, ``(N, H, W)`` or ``(H, W)``; uint8 or
    float in [0, 1]; tensors or numpy arrays) on their device: ``(N, H, W, 2)`` float32 pixels,
    ``frames0(p) ~ frames1(p + flow(p))``, as ``cv2.optflow.DualTVL1OpticalFlow_create().calc``.

    ``variant`` picks OpenCV's CPU or CUDA flavour, ``stopping`` OpenCV's epsilon rule (per sample) or
    a fixed iteration count (see the module docstring). ``params`` or keyword overrides (``tau=...``,
    ``warps=...``) change OpenCV's defaults."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown TV-L1 variant {variant!r}; choose one of {', '.join(VARIANTS)}")
    if stopping not in STOPPING:
        raise ValueError(f"unknown stopping rule {stopping!r}; choose one of {', '.join(STOPPING)}")
    prm = replace(params or TVL1Params(), **overrides)
    i0 = _to_gray255(torch.as_tensor(frames0), "frames0")
    i1 = _to_gray255(torch.as_tensor(frames1), "frames1").to(i0.device)
    if i0.shape != i1.shape:
        raise ValueError(f"frames0 and frames1 must have the same shape, got {tuple(i0.shape)} and {tuple(i1.shape)}")
    n, h, w = i0.shape
    if h < 3 or w < 3:
        raise ValueError(f"TV-L1 needs frames of at least 3x3 pixels, got {h}x{w}")
    if check_every is None:
        check_every = 1 if i0.device.type == "cpu" else 30
    sizes = pyramid_sizes(h, w, prm.nscales, prm.scale_step)
    i0s, i1s = [i0], [i1]
    for s in range(1, len(sizes)):
        fxy = (prm.scale_step, prm.scale_step)
        i0s.append(resize_linear(i0s[-1], sizes[s], fxy))
        i1s.append(resize_linear(i1s[-1], sizes[s], fxy))
    with torch.no_grad():
        u = i0.new_zeros(n, 2, *sizes[-1])
        for s in range(len(sizes) - 1, -1, -1):
            u = _one_scale(i0s[s], i1s[s], u, prm, variant, stopping, check_every, compile)
            if s:
                u = resize_linear(u, sizes[s - 1]) * np.float32(1.0 / prm.scale_step)
    return u.permute(0, 2, 3, 1).contiguous()


def _one_scale(i0, i1, u, prm: TVL1Params, variant: str, stopping: str, check_every: int,
               compile: bool) -> torch.Tensor:
    """All warps at one pyramid level; ``u`` (N, 2, H, W) is the starting flow, returned refined."""
    n, h, w = i0.shape
    scaled_eps = float(np.float32(prm.epsilon * prm.epsilon * h * w))
    l_t = float(np.float32(prm.lambda_ * prm.theta))
    taut = float(np.float32(prm.tau / prm.theta))
    theta = float(np.float32(prm.theta))
    use_eps = stopping == "epsilon" and prm.epsilon > 0
    compact = use_eps and check_every == 1       # drop stopped samples from the batch (needs a sync per step)
    median = prm.median_filtering if variant == "cpu" and prm.median_filtering > 1 else 0
    schedule = [prm.inner_iterations] * prm.outer_iterations if variant == "cpu" else [prm.iterations]
    stack = torch.cat([i1.unsqueeze(1), centered_gradient(i1)], 1)   # I1, I1x, I1y warped together
    px, py = i0.new_zeros(n, 2, h, w), i0.new_zeros(n, 2, h, w)      # dual variable, x and y parts
    for _ in range(prm.warps):
        warped = warp_cubic(stack, u, variant)
        g = warped[:, 1:].contiguous()                                 # (N, 2, H, W): I1wx, I1wy
        grad2 = g[:, :1] * g[:, :1] + g[:, 1:] * g[:, 1:]
        rho_c = warped[:, :1] - g[:, :1] * u[:, :1] - g[:, 1:] * u[:, 1:] - i0.unsqueeze(1)
        # thresholding: fi = clamp(-rho / |grad|^2, -l_t, l_t), and +-l_t (or 0 when rho = 0) where
        # |grad|^2 <= FLT_EPSILON -- OpenCV's three-way test, in two ops
        neg_inv = torch.where(grad2 > _FLT_EPSILON, -1.0 / grad2, torch.full_like(grad2, -3e37))
        st = _State(u.clone(), px, py, g, rho_c, neg_inv, torch.zeros(n, device=u.device))
        idx = torch.arange(n, device=u.device) if compact else None
        running = torch.ones(n, dtype=torch.bool, device=u.device) if use_eps and not compact else None
        k = 0
        for inner in schedule:
            if st.u.shape[0] == 0 or (running is not None and k and not bool(running.any())):
                break
            if median:
                med = (_compiled(median_blur) if compile else median_blur)(st.u, median)
                st.u = med if running is None else torch.where(running.view(-1, 1, 1, 1), med, st.u)
            for it in range(inner):
                error = _iterate(st, l_t, theta, taut, running if not compact else None, compile)
                if use_eps:
                    if variant == "cuda":  # OpenCV CUDA sums the change only at odd n while prev_error < eps
                        calc = (prev := st.prev_error) < scaled_eps
                        calc &= bool(it % 2 == 1)
                        error = torch.where(calc, error, torch.full_like(error, float("inf")))
                        st.prev_error = torch.where(calc, error, prev - scaled_eps)
                    go = error > scaled_eps
                    if compact:
                        if not bool(go.all()):
                            stop = ~go
                            u[idx[stop]], px[idx[stop]], py[idx[stop]] = st.u[stop], st.px[stop], st.py[stop]
                            st.keep(go)
                            idx = idx[go]
                            if st.u.shape[0] == 0:
                                break
                    else:
                        running = running & go
                k += 1
                if running is not None and k % check_every == 0 and not bool(running.any()):
                    break
        if compact:
            u[idx] = st.u
            if st.px is not px:                  # (px, py were updated in place while nobody stopped)
                px[idx], py[idx] = st.px, st.py
        else:
            u, px, py = st.u, st.px, st.py
    return u


@dataclass
class _State:
    """The per-warp working set of the samples still iterating."""
    u: torch.Tensor
    px: torch.Tensor
    py: torch.Tensor
    g: torch.Tensor
    rho_c: torch.Tensor
    neg_inv: torch.Tensor
    prev_error: torch.Tensor
    buf: dict = field(default_factory=dict)  # scratch tensors of the in-place step, reused

    def keep(self, mask: torch.Tensor) -> None:
        for name in ("u", "px", "py", "g", "rho_c", "neg_inv", "prev_error"):
            setattr(self, name, getattr(self, name)[mask])
        self.buf.clear()

    def buffer(self, name: str, like: torch.Tensor, zero: bool = False) -> torch.Tensor:
        b = self.buf.get(name)
        if b is None or b.shape != like.shape:
            b = self.buf[name] = torch.zeros_like(like) if zero else torch.empty_like(like)
        return b


def tvl1_step(u, px, py, g, rho_c, neg_inv, l_t: float, theta: float, taut: float):
    """One TV-L1 iteration, as OpenCV's estimateV, divergence, estimateU, forwardGradient and
    estimateDualVariables: returns ``(u, px, py, sum of squared changes of u per sample)``.
    ``u, px, py, g`` are (N, 2, H, W) (flow; dual variable x and y parts; warped gradient of I1),
    ``rho_c, neg_inv`` (N, 1, H, W). Pure, so that ``torch.compile`` can fuse it into one loop."""
    rho = rho_c + g[:, :1] * u[:, :1] + g[:, 1:] * u[:, 1:]
    fi = (rho * neg_inv).clamp(-l_t, l_t)
    div = (px - F.pad(px[..., :-1], (1, 0))) + (py - F.pad(py[..., :-1, :], (0, 0, 1, 0)))
    u_new = (u + fi * g) + theta * div
    error = (u_new - u).square().sum((1, 2, 3))
    ux = F.pad(u_new[..., 1:] - u_new[..., :-1], (0, 1))
    uy = F.pad(u_new[..., 1:, :] - u_new[..., :-1, :], (0, 0, 0, 1))
    ng = 1.0 + taut * torch.sqrt(ux * ux + uy * uy)
    return u_new, (px + taut * ux) / ng, (py + taut * uy) / ng, error


@functools.lru_cache(maxsize=None)
def _compiled(fn):
    return torch.compile(fn, dynamic=True)


def _tvl1_step_(st: "_State", l_t: float, theta: float, taut: float) -> torch.Tensor:
    """:func:`tvl1_step` in place on ``st``, into reused buffers (eager on a CPU this is 2-4x faster
    than the pure form: fresh multi-MB tensors cost page faults on every iteration)."""
    u, g, px, py = st.u, st.g, st.px, st.py
    rho = torch.addcmul(st.rho_c, g[:, :1], u[:, :1], out=st.buffer("rho", st.rho_c)).addcmul_(g[:, 1:], u[:, 1:])
    fi = rho.mul_(st.neg_inv).clamp_(-l_t, l_t)
    div = st.buffer("div", px)
    div.copy_(px)
    div[..., 1:] -= px[..., :-1]
    div += py
    div[..., 1:, :] -= py[..., :-1, :]
    u_new = torch.addcmul(u, fi, g, out=st.buffer("u_next", u)).add_(div, alpha=theta)
    d = torch.sub(u_new, u, out=div).view(u.shape[0], -1)
    error = torch.linalg.vecdot(d, d)
    ux, uy = st.buffer("ux", u, zero=True), st.buffer("uy", u, zero=True)   # last column / row stay 0
    torch.sub(u_new[..., 1:], u_new[..., :-1], out=ux[..., :-1])
    torch.sub(u_new[..., 1:, :], u_new[..., :-1, :], out=uy[..., :-1, :])
    ng = torch.mul(ux, ux, out=div).addcmul_(uy, uy).sqrt_().mul_(taut).add_(1.0)
    px.add_(ux, alpha=taut).div_(ng)
    py.add_(uy, alpha=taut).div_(ng)
    st.buf["u_next"], st.u = u, u_new          # double buffering: the old u is the next output
    return error


def _iterate(st: _State, l_t: float, theta: float, taut: float, running, compile: bool = False):
    """One iteration on ``st`` (in place); samples whose ``running`` flag is False keep u and p.
    Returns the per-sample sum of squared changes of u."""
    if not compile:   # the in-place step; frozen samples get their u and p back (same arithmetic either way)
        if running is None:
            return _tvl1_step_(st, l_t, theta, taut)
        u, px, py = st.u, st.px.clone(), st.py.clone()
        error = _tvl1_step_(st, l_t, theta, taut)
        r = running.view(-1, 1, 1, 1)
        st.u, st.px, st.py = torch.where(r, st.u, u), torch.where(r, st.px, px), torch.where(r, st.py, py)
        return error
    step = _compiled(tvl1_step) if compile else tvl1_step
    u_new, px, py, error = step(st.u, st.px, st.py, st.g, st.rho_c, st.neg_inv, l_t, theta, taut)
    if running is None:
        st.u, st.px, st.py = u_new, px, py
    else:
        r = running.view(-1, 1, 1, 1)
        st.u, st.px, st.py = torch.where(r, u_new, st.u), torch.where(r, px, st.px), torch.where(r, py, st.py)
    return error


def tvl1_video(gray, *, batch_size: int = 16, device: str | torch.device = "cpu", **kwargs) -> np.ndarray:
    """Flow ``(T-1, H, W, 2)`` float32 numpy between consecutive frames of ``gray`` (T, H, W), computed
    ``batch_size`` pairs at a time on ``device`` (``kwargs`` go to :func:`tvl1_flow`)."""
    gray = torch.as_tensor(np.asarray(gray))
    if gray.dim() != 3 or len(gray) < 2:
        raise ValueError(f"need grayscale frames (T >= 2, H, W), got shape {tuple(gray.shape)}")
    out = []
    for s in range(0, len(gray) - 1, batch_size):
        e = min(s + batch_size, len(gray) - 1)
        out.append(tvl1_flow(gray[s:e].to(device), gray[s + 1:e + 1].to(device), **kwargs).cpu().numpy())
    return np.concatenate(out)
