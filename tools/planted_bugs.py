"""Plant the five bugs of issue 15, one at a time, in a throwaway export of HEAD, and check that the inflation
tests fail on each (and pass on the clean copy).

    .venv/bin/python tools/planted_bugs.py [--work /tmp/quovadis-planted] [--tests tests/test_x.py ...]

Each bug changes the output on real clips but not on boring ones (one frame repeated), which is why the
older tests missed them. Exit status 0 when every bug is caught and the clean copy passes.
"""
from __future__ import annotations

import argparse
import io
import os
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TESTS = ["tests/test_inflate_differential.py", "tests/test_video_model_api.py", "tests/test_padding.py",
         "tests/test_inflate_laws.py"]

# (name, file, exact source text, its buggy replacement)
BUGS = [
    ("kernel taps reversed in time", "inflate/layers.py",
     "weight = self.effective_weight()\n", "weight = self.effective_weight().flip(2)\n"),
    ("temporal max-pool computed as a mean", "inflate/layers.py",
     'y = windows.amax(-1) if self.reduce == "max" else windows.mean(-1)', "y = windows.mean(-1)"),
    ("causal flag ignored", "inflate/layers.py",
     "rule = causal_padding if self.causal else same_padding", "rule = same_padding"),
    ("circular padding done as replicate", "inflate/padding.py",
     "index = torch.arange(-front, length + back, device=x.device).remainder_(length)",
     "index = torch.arange(-front, length + back, device=x.device).clamp_(0, length - 1)"),
    ("time average replaced by the last step", "inflate/video_model.py",
     "return t.mean(1)", "return t[:, -1]"),
]


def export_head(work: Path) -> None:
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(REPO), "archive", "HEAD"], capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(work, filter="data")


def run_tests(work: Path, tests: list[str]) -> tuple[bool, str, float]:
    env = {**os.environ, "PYTHONPATH": str(work), "HYPOTHESIS_PROFILE": os.environ.get("HYPOTHESIS_PROFILE", "dev"),
           "PYTHONWARNINGS": "ignore"}
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:xdist", "-p", "no:cacheprovider",
                           *tests], cwd=work, env=env, capture_output=True, text=True)
    failed = [ln for ln in proc.stdout.splitlines() if ln.startswith("FAILED")]
    return proc.returncode == 0, (failed[0][7:] if failed else proc.stdout.strip().splitlines()[-1]), \
        time.perf_counter() - start


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--work", type=Path, default=Path("/tmp/quovadis-planted"))
    ap.add_argument("--tests", nargs="+", default=TESTS)
    args = ap.parse_args()
    if REPO in args.work.resolve().parents or args.work.resolve() == REPO:
        ap.error("--work must be outside the repository: the bugs are planted there")
    export_head(args.work)
    probe = subprocess.run([sys.executable, "-c", "import inflate; print(inflate.__file__)"], cwd=args.work,
                           env={**os.environ, "PYTHONPATH": str(args.work)}, capture_output=True, text=True)
    if not probe.stdout.startswith(str(args.work)):
        print(f"the tests would import inflate from {probe.stdout.strip()}, not from {args.work}", file=sys.stderr)
        return 2
    ok, summary, seconds = run_tests(args.work, args.tests)
    print(f"{'clean copy':40} {'passes' if ok else 'FAILS: ' + summary} ({seconds:.0f} s)")
    caught_all = ok
    for name, rel, good, bad in BUGS:
        path = args.work / rel
        source = path.read_text()
        if source.count(good) != 1:
            print(f"{name:40} cannot plant: {rel} no longer holds {good!r} exactly once")
            caught_all = False
            continue
        path.write_text(source.replace(good, bad))
        try:
            passed, summary, seconds = run_tests(args.work, args.tests)
        finally:
            path.write_text(source)
        print(f"{name:40} {'SURVIVES' if passed else 'caught by ' + summary} ({seconds:.0f} s)")
        caught_all &= not passed
    return 0 if caught_all else 1


if __name__ == "__main__":
    sys.exit(main())
