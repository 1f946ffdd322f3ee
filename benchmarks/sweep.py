"""Coverage sweep: inflate one small model per timm family and every torchvision classifier, and check
the boring-video law (a clip of one repeated frame must give the 2D model's output).

    python benchmarks/sweep.py                       # everything (one representative per timm family)
    python benchmarks/sweep.py --only torchvision --limit 5
    python benchmarks/sweep.py --families resnet,vision_transformer

Per model: random weights (parameters initialised to one constant value, such as zero heads, zero-init
last-BN gammas and layer scales, get jittered so no branch is switched off), eval mode, float64; ``inflate.inflate(model)`` with defaults (uniform kt=3);
relative max error on a clip of T=3 repeated frames (batch 1) in float64 and again in float32; inflation
time; parameter counts; inflated conv/pool counts. PASS means float64 relative error < 1e-9.

Every model runs in a persistent worker process with a per-model time limit: a model that hangs or
crashes the worker is recorded and the worker is restarted. While the worker runs a model, the parent
picks the timm representatives (fewest parameters per family, counted on the meta device).
Results go to benchmarks/results/sweep.md and benchmarks/results/sweep.json.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import sys
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "benchmarks" / "results"
PASS_TOL = 1e-9
FRAMES = 3
SMALL_SIZES = (64, 56, 128, 112)  # tried in this order before the native size (56, 112: patch-14 models)

# Name tokens of variants that are never the smallest of their family (skipped when counting, to save time).
BIG_TOKENS = {"large", "huge", "giant", "gigantic", "enormous", "xlarge", "xl", "xxl", "big", "l", "h", "g", "e",
              "l2", "1b", "2b", "3b", "6b", "7b", "so400m", "medium"}
RES_TOKENS = {"320", "336", "384", "448", "480", "512", "518", "560", "576", "640", "768", "800", "896", "1024"}


# ------------------------------------------------------------------------------------------------
# Choosing the timm representatives.

def timm_families() -> dict[str, list[str]]:
    import timm
    from timm.models import _registry

    fams: dict[str, list[str]] = {}
    for name in timm.list_models():
        fams.setdefault(_registry._model_to_module[name], []).append(name)
    return fams


def _looks_big(name: str) -> bool:
    tokens = name.split(".")[0].split("_")
    if any(t in BIG_TOKENS for t in tokens):
        return True
    return len(tokens) > 1 and tokens[-1] in RES_TOKENS


def timm_candidates(names: list[str]) -> list[str]:
    real = [n for n in names if not n.startswith("test_")] or names
    return [n for n in real if not _looks_big(n)] or real


def meta_param_count(name: str) -> float:
    import timm
    import torch

    try:
        with torch.device("meta"):
            m = timm.create_model(name, pretrained=False)
        return float(sum(p.numel() for p in m.parameters()))
    except Exception:
        return float("inf")


class TimmSelector:
    """Counts the candidates of each family one model at a time, so it can interleave with the worker."""

    def __init__(self, families: list[tuple[str, list[str]]]):
        self.pending = [(fam, timm_candidates(names), len(names)) for fam, names in families]
        self.counts: dict[str, float] = {}
        self.ready: list[dict] = []

    @property
    def done(self) -> bool:
        return not self.pending

    def step(self) -> None:
        fam, cands, n_all = self.pending[0]
        todo = [n for n in cands if n not in self.counts]
        if todo:
            self.counts[todo[0]] = meta_param_count(todo[0])
            return
        import timm

        self.pending.pop(0)
        best = min(cands, key=lambda n: (self.counts[n], _native_size(n), n))
        self.ready.append({"source": "timm", "name": best, "family": fam,
                           "family_size": n_all, "candidates_counted": len(cands),
                           "native": _native_size(best), "in_timm": timm.is_model(best)})


def _native_size(name: str) -> int:
    import timm

    cfg = timm.models.get_pretrained_cfg(name)
    size = getattr(cfg, "input_size", None) or (3, 224, 224)
    return int(size[-1])


def torchvision_tasks() -> list[dict]:
    import torchvision

    names = torchvision.models.list_models(module=torchvision.models)
    return [{"source": "torchvision", "name": n, "family": "torchvision",
             "native": 299 if n == "inception_v3" else 224} for n in sorted(names)]


# ------------------------------------------------------------------------------------------------
# The worker: build, find a size that runs in 2D, inflate, measure.

def _build(task: dict, kwargs: dict):
    import torch

    torch.manual_seed(0)
    if task["source"] == "timm":
        import timm
        model = timm.create_model(task["name"], pretrained=False, **kwargs)
    else:
        import torchvision
        model = torchvision.models.get_model(task["name"], weights=None, **kwargs)
    model = model.eval().to(torch.float64)
    jitter_constant_params(model)
    return model


def jitter_constant_params(model) -> int:
    """Perturb every floating parameter whose elements all hold one value (zero-initialised heads and
    last-BN gammas, BN gamma=1/beta=0, constant layer scales), so that no branch of the random network is
    switched off and the boring-video check sees every inflated conv. Returns how many were perturbed."""
    import torch

    g = torch.Generator().manual_seed(1)
    n = 0
    with torch.no_grad():
        for p in model.parameters():
            if not p.is_floating_point() or p.numel() < 2:
                continue
            flat = p.reshape(-1)
            if bool((flat == flat[0]).all()):
                c = float(flat[0])
                noise = torch.randn(p.shape, generator=g, dtype=torch.float64).to(p)
                p.add_(noise * (0.1 * abs(c) if c != 0 else 0.1))
                n += 1
    return n


def boring_errors(model_2d, model_3d, size: int, dtype) -> tuple[float, float]:
    """(max|y3 - y2| / max|y2|, max|y2|) for one random image repeated FRAMES times (batch 1)."""
    import torch
    from inflate.report import first_tensor

    model_2d.eval(), model_3d.eval()
    g = torch.Generator().manual_seed(0)
    images = torch.randn(1, 3, size, size, generator=g, dtype=dtype)
    with torch.no_grad():
        y2 = first_tensor(model_2d(images))
        y3 = first_tensor(model_3d(images[:, :, None].expand(-1, -1, FRAMES, -1, -1).contiguous()))
    if y2.shape != y3.shape:
        raise AssertionError(f"2D output {tuple(y2.shape)} and video output {tuple(y3.shape)} differ in shape")
    scale = y2.abs().max().item()
    return (y3 - y2).abs().max().item() / max(scale, 1e-300), scale


def _size_kwarg(task: dict, size: int) -> dict | None:
    if task["source"] == "timm":
        return {"img_size": size}
    if task["name"].startswith("vit_"):
        return {"image_size": size}
    return None


def _runs_2d(model, size: int) -> None:
    import torch
    with torch.no_grad():
        model(torch.randn(1, 3, size, size, dtype=torch.float64))


def _first_working(task: dict, log: list):
    """Return (model_2d, size, kwargs) for the smallest input size the 2D model runs at, or raise _SkipError.

    Tries each small size with the plain model, then with the size passed to the constructor (``img_size=``
    for timm, ``image_size=`` for torchvision ViTs), and finally the model's native size."""
    native = task["native"]
    attempts = []
    for s in SMALL_SIZES:
        if s < native:
            attempts.append((s, {}))
            if _size_kwarg(task, s):
                attempts.append((s, _size_kwarg(task, s)))
    attempts.append((native, {}))
    plain, last_err = None, None
    for size, kwargs in attempts:
        if not kwargs:
            if plain is None:
                try:
                    plain = _build(task, {})
                except Exception as e:  # noqa: BLE001
                    raise _SkipError(f"build failed: {type(e).__name__}: {e}") from e
            model = plain
        else:
            try:
                model = _build(task, kwargs)
            except Exception as e:  # noqa: BLE001  (a constructor without that argument)
                log.append(f"{size} {kwargs}: build {type(e).__name__}: {str(e)[:100]}")
                continue
        try:
            _runs_2d(model, size)
            return model, size, kwargs
        except Exception as e:  # noqa: BLE001
            last_err = e
            log.append(f"{size}{' ' + str(kwargs) if kwargs else ''}: {type(e).__name__}: {str(e)[:120]}")
    raise _SkipError(f"{type(last_err).__name__}: {last_err}")


class _SkipError(Exception):
    pass


def _where(e: BaseException) -> str:
    tb = traceback.extract_tb(e.__traceback__)
    if not tb:
        return ""
    f = tb[-1]
    return f"{Path(f.filename).name}:{f.lineno} in {f.name}"


def run_one(task: dict) -> dict:
    import warnings

    import torch

    import inflate
    from inflate.report import count_params

    rec = dict(task, status="?", size=None, kwargs={}, err64=None, err32=None, inflate_ms=None, params_2d=None,
               params_3d=None, inflated_conv=None, inflated_pool=None, kept_per_frame=[], error=None, where=None,
               size_log=[], seconds=None, out_scale=None)
    t0 = time.perf_counter()
    torch.manual_seed(0)
    stage = "2d"
    try:
        try:
            model_2d, size, kwargs = _first_working(task, rec["size_log"])
        except _SkipError as e:
            rec.update(status="skip: 2D forward fails", error=str(e)[:500])
            return rec
        rec.update(size=size, kwargs=kwargs, params_2d=count_params(model_2d))
        stage = "inflate"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t = time.perf_counter()
            model_3d = inflate.inflate(model_2d)
            rec["inflate_ms"] = (time.perf_counter() - t) * 1000
        cfg = model_3d.config
        rec.update(params_3d=count_params(model_3d), inflated_conv=cfg["inflated"]["conv"],
                   inflated_pool=cfg["inflated"]["pool"], kept_per_frame=cfg["kept_per_frame"])
        stage = "3d forward (float64)"
        rec["err64"], rec["out_scale"] = boring_errors(model_2d, model_3d, size, torch.float64)
        stage = "3d forward (float32)"
        model_2d.float(), model_3d.float()
        rec["err32"], _ = boring_errors(model_2d, model_3d, size, torch.float32)
        if not rec["out_scale"] > 0 or rec["out_scale"] != rec["out_scale"]:
            rec["status"] = "FAIL: 2D output is zero/NaN"
        elif rec["err64"] < PASS_TOL:
            rec["status"] = "pass"
        else:
            rec["status"] = "FAIL: error"
    except Exception as e:  # noqa: BLE001
        rec.update(status=f"FAIL: {stage}", error=f"{type(e).__name__}: {str(e)[:500]}", where=_where(e))
    finally:
        rec["seconds"] = round(time.perf_counter() - t0, 2)
    return rec


def _rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        return 0


def _release_memory() -> int:
    """Collect garbage and hand freed heap back to the OS (glibc keeps it otherwise); return the RSS."""
    import ctypes
    import gc

    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass
    return _rss_bytes()


def worker_main(conn, threads: int) -> None:
    import torch
    torch.set_num_threads(threads)
    import warnings
    warnings.filterwarnings("ignore")
    while True:
        task = conn.recv()
        if task is None:
            return
        conn.send(("started", task["name"]))
        rec = run_one(task)
        rec["worker_rss_gb"] = round(_release_memory() / 2**30, 2)
        conn.send(("done", rec))


class Worker:
    def __init__(self, threads: int):
        self.threads = threads
        self.ctx = mp.get_context("spawn")
        self._start()

    def _start(self):
        self.conn, child = self.ctx.Pipe()
        self.proc = self.ctx.Process(target=worker_main, args=(child, self.threads), daemon=True)
        self.proc.start()
        child.close()

    def restart(self):
        self.proc.kill()
        self.proc.join()
        self._start()

    def stop(self):
        try:
            self.conn.send(None)
        except (BrokenPipeError, OSError):
            pass
        self.proc.join(timeout=10)
        if self.proc.is_alive():
            self.proc.kill()


# ------------------------------------------------------------------------------------------------
# Report.

def _fmt_err(v):
    return "-" if v is None else f"{v:.1e}"


def _fmt_ms(v):
    return "-" if v is None else f"{v:.0f}"


def _fmt_m(v):
    return "-" if v is None else f"{v / 1e6:.2f}"


def markdown(records: list[dict], summary: str, meta: dict) -> str:
    lines = [f"# Inflation coverage sweep", "",
             f"{meta['date']} · torch {meta['torch']} · timm {meta['timm']} · torchvision {meta['torchvision']} · "
             f"T={FRAMES}, batch 1, random weights, `inflate.inflate(model)` defaults · pass: float64 rel. error "
             f"< {PASS_TOL:g} · wall {meta['wall_s']:.0f} s{meta.get('note', '')}", "", f"**{summary}**", "",
             "| model | family | status | size | err64 | err32 | inflate ms | params 2D M | params 3D M "
             "| inflated convs | pools | kept per-frame |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in records:
        lines.append(
            f"| {r['name']} | {r['family']} | {r['status']} | {r['size'] or '-'} | {_fmt_err(r['err64'])} "
            f"| {_fmt_err(r['err32'])} | {_fmt_ms(r['inflate_ms'])} "
            f"| {_fmt_m(r['params_2d'])} | {_fmt_m(r['params_3d'])} | {'-' if r['inflated_conv'] is None else r['inflated_conv']} "
            f"| {'-' if r['inflated_pool'] is None else r['inflated_pool']} | {len(r['kept_per_frame'] or [])} |")
    bad = [r for r in records if r["status"] != "pass"]
    if bad:
        lines += ["", "## Not passing", ""]
        for r in bad:
            detail = r["error"] or f"err64 = {_fmt_err(r['err64'])}, err32 = {_fmt_err(r['err32'])}"
            where = f" ({r['where']})" if r.get("where") else ""
            lines.append(f"- **{r['name']}** ({r['family']}): {r['status']}: {detail}{where}")
    kept = [r for r in records if r["kept_per_frame"]]
    if kept:
        lines += ["", "## Layers kept per-frame (custom forward, or a batch other than the frames')", ""]
        for r in kept:
            lines.append(f"- {r['name']}: {len(r['kept_per_frame'])}: {', '.join(r['kept_per_frame'][:4])}"
                         + (" ..." if len(r["kept_per_frame"]) > 4 else ""))
    return "\n".join(lines) + "\n"


def summarize(records: list[dict]) -> str:
    def part(src):
        rs = [r for r in records if r["source"] == src]
        return sum(r["status"] == "pass" for r in rs), len(rs)
    (tp, tn), (vp, vn) = part("timm"), part("torchvision")
    return f"timm families: {tp}/{tn} pass; torchvision: {vp}/{vn} pass"


# ------------------------------------------------------------------------------------------------

def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--limit", type=int, default=None, help="at most N models per source")
    ap.add_argument("--only", choices=("timm", "torchvision"), default=None)
    ap.add_argument("--families", default=None,
                    help="comma-separated timm families (module names, e.g. resnet,vision_transformer) and/or "
                         "torchvision model names")
    ap.add_argument("--timeout", type=float, default=240.0, help="seconds per model (default 240)")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads in the worker (default 1: on a loaded 2-core machine, 2 OpenMP threads "
                         "were seen to slow small models 100x)")
    ap.add_argument("--max-worker-gb", type=float, default=4.0,
                    help="restart the worker when it still holds more than this after a model (default 4)")
    ap.add_argument("--out", default=str(RESULTS), help="results folder")
    ap.add_argument("--no-merge", action="store_true",
                    help="with --limit/--only/--families, overwrite the results instead of merging the rerun "
                         "models into the existing sweep.json")
    args = ap.parse_args(argv)

    import torch
    torch.set_num_threads(1)
    import timm
    import torchvision

    wanted = set(filter(None, (args.families or "").split(","))) or None
    tv_tasks: list[dict] = []
    fams: list[tuple[str, list[str]]] = []
    if args.only in (None, "torchvision"):
        tv_tasks = [t for t in torchvision_tasks() if wanted is None or t["name"] in wanted]
        tv_tasks = tv_tasks[: args.limit] if args.limit else tv_tasks
    if args.only in (None, "timm"):
        fams = [(f, ns) for f, ns in sorted(timm_families().items()) if wanted is None or f in wanted]
        fams = fams[: args.limit] if args.limit else fams
    if wanted:
        known = {f for f, _ in fams} | {t["name"] for t in tv_tasks}
        missing = wanted - known
        if missing and args.only != "torchvision":
            all_fams = timm_families()
            print(f"note: not a timm family or torchvision model: {sorted(missing - set(all_fams))}", file=sys.stderr)
    selector = TimmSelector(fams)

    start = time.time()
    worker = Worker(args.threads)
    records: list[dict] = []
    queue = list(tv_tasks)  # torchvision first: its tasks are known while timm representatives are chosen
    total = len(tv_tasks) + len(fams)
    try:
        while queue or selector.ready or not selector.done:
            if not queue:
                if selector.ready:
                    queue.extend(selector.ready)
                    selector.ready.clear()
                else:
                    selector.step()
                    continue
            task = queue.pop(0)
            worker.conn.send(task)
            sent = time.time()
            rec = None
            while rec is None:
                if not selector.done:
                    selector.step()
                    queue.extend(selector.ready)
                    selector.ready.clear()
                    ready = worker.conn.poll(0)
                else:
                    ready = worker.conn.poll(1.0)
                if ready:
                    try:
                        kind, payload = worker.conn.recv()
                    except (EOFError, OSError):
                        rec = dict(task, status="FAIL: worker died", error=f"exit code {worker.proc.exitcode} "
                                   "(out of memory?)")
                        worker.restart()
                        break
                    if kind == "started":
                        sent = time.time()
                    else:
                        rec = payload
                elif not worker.proc.is_alive():
                    rec = dict(task, status="FAIL: worker died",
                               error=f"exit code {worker.proc.exitcode} (out of memory?)")
                    worker.restart()
                elif time.time() - sent > args.timeout:
                    rec = dict(task, status="timeout", error=f"over {args.timeout:.0f} s")
                    worker.restart()
            if (rec.get("worker_rss_gb") or 0) > args.max_worker_gb:
                worker.restart()  # big models leave the heap grown; a fresh worker keeps the sweep from OOM
            for k in ("size", "kwargs", "err64", "err32", "inflate_ms", "params_2d", "params_3d", "inflated_conv",
                      "inflated_pool", "error", "where", "seconds"):
                rec.setdefault(k, None)
            rec.setdefault("kept_per_frame", [])
            rec.setdefault("size_log", [])
            records.append(rec)
            print(f"[{len(records)}/{total} {time.time() - start:5.0f}s] {rec['name']:<40} {rec['family']:<24} "
                  f"{rec['status']:<24} err64={_fmt_err(rec['err64'])} err32={_fmt_err(rec['err32'])} "
                  f"size={rec['size']} {rec['seconds']}s" + (f"  {rec['error'][:150]}" if rec["error"] else ""),
                  flush=True)
    finally:
        worker.stop()

    out = Path(args.out)
    partial = bool(args.limit or args.only or args.families)
    merged_note = ""
    if partial and not args.no_merge and (out / "sweep.json").is_file():
        def key(r):
            return (r["source"], r["family"] if r["source"] == "timm" else r["name"])
        new = {key(r) for r in records}
        old = json.loads((out / "sweep.json").read_text())["results"]
        records = [r for r in old if key(r) not in new] + records
        merged_note = f"; last run rerun {len(new)} model(s) and merged them into the earlier results"
        print(f"merged {len(new)} rerun model(s) into {out / 'sweep.json'} ({len(records)} in all)")
    records.sort(key=lambda r: (r["source"] != "timm", r["family"], r["name"]))
    summary = summarize(records)
    meta = {"date": time.strftime("%Y-%m-%d %H:%M"), "torch": torch.__version__, "timm": timm.__version__,
            "torchvision": torchvision.__version__, "wall_s": time.time() - start, "frames": FRAMES,
            "pass_tol": PASS_TOL, "args": vars(args), "note": merged_note}
    md = markdown(records, summary, meta)
    print()
    print(md)
    out.mkdir(parents=True, exist_ok=True)
    (out / "sweep.md").write_text(md)
    (out / "sweep.json").write_text(json.dumps({"summary": summary, "meta": meta, "results": records}, indent=1,
                                               default=str))
    print(summary)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
