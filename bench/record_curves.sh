#!/usr/bin/env bash
# Record the learning-curve tables (issue 16): the one grid in bench/curves/grid.yaml (48
# configurations, every one to the demo's full epoch budget, no early stopping) on each
# embedded demo (search.demo's sbi, swap, faces, digits), then ship each experiment folder's
# trials/, epochs/ and space.yaml under bench/curves/<demo>/ with a RECORDED_AT file.
#
#   bench/record_curves.sh                 # every embedded demo
#   bench/record_curves.sh sbi faces       # some demos (sbi, swap, faces, digits)
#   bench/record_curves.sh --large sbi     # a large table (issue 25): bench/curves/grid_sbi_1k.yaml
#                                          # -> bench/curves/sbi_1k, in-process (no Ray), with the
#                                          # 20-configuration seed check and bench/table_signal.py
#
# Hours of CPU: it runs at the lowest priority (nice 19) on one core (taskset -c $CORE), one
# trial at a time. Resumable: stop it any time (Ctrl-C, kill) and run the same command again;
# finished trials are kept (search.run --resume) and the shipped copy is refreshed. Pause it
# (kill -STOP / -CONT on its process group) while timing anything else on the machine.
# Environment: PYTHON (default: .venv/bin/python, else python3), CORE (default 1), WORK (the
# search's results root, default results-curves), DEST (default bench/curves), and for a smoke
# check only TRIALS / EPOCHS (e.g. TRIALS=2 EPOCHS=1; the shipped copy then says "partial").
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ -z "${PYTHON:-}" ]]; then
    if [[ -x .venv/bin/python ]]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
CORE=${CORE:-1}
WORK=${WORK:-results-curves}
DEST=${DEST:-bench/curves}
GRID=bench/curves/grid.yaml
ALL_DEMOS=(sbi swap faces digits)
large=""
if [[ "${1:-}" == "--large" ]]; then large=1; shift; fi
demos=("$@")
[[ ${#demos[@]} -gt 0 ]] || demos=("${ALL_DEMOS[@]}")
low=(nice -n 19)
if command -v taskset >/dev/null; then low+=(taskset -c "$CORE"); fi
commit=$(git rev-parse HEAD 2>/dev/null || echo unknown)
changed=$(git status --porcelain --untracked-files=no 2>/dev/null | wc -l || true)
dirty=""
[[ ${changed:-0} -gt 0 ]] && dirty=1

if [[ -n "$large" ]]; then
    [[ ${#demos[@]} -gt 0 ]] || demos=(sbi digits)
    for demo in "${demos[@]}"; do
        grid=bench/curves/grid_${demo}_1k.yaml
        out="$DEST/${demo}_1k"
        [[ -f "$grid" ]] || { echo "no large grid $grid" >&2; exit 2; }
        echo "recording the large table $grid -> $out (nice 19, core $CORE; resumable)"
        OMP_NUM_THREADS=1 "${low[@]}" "$PYTHON" bench/record_table.py "$grid" \
            --out "$out" --seed-check 20
        done_n=$(find "$out/trials" -name '*.parquet' | wc -l)
        {
            echo "commit: $commit${dirty:+ (uncommitted changes)}"
            echo "recorded_at: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
            echo "grid: $grid"
            echo "trials: $done_n"
            echo "command: bench/record_curves.sh --large $demo"
        } >"$out/RECORDED_AT"
        "$PYTHON" bench/table_signal.py "$out" || true
    done
    exit 0
fi

for demo in "${demos[@]}"; do
    # the demo's task and full epoch budget, from search.demo's own table and space file
    read -r task epochs < <("$PYTHON" -c "
import sys, yaml
from search.demo import DEMO_TASKS, SPACES
t = {t.demo: t for t in DEMO_TASKS}.get('$demo')
if t is None:
    sys.exit('unknown demo $demo; choose from ' + ', '.join(t.demo for t in DEMO_TASKS))
print(t.task, yaml.safe_load((SPACES / t.space).read_text())['fixed']['epochs'])
") || exit 2
    epochs=${EPOCHS:-$epochs}
    extra=(--epochs "$epochs")
    [[ -n "${TRIALS:-}" ]] && extra+=(--trials "$TRIALS")
    exp="$WORK/$task/curves-$demo"
    echo "recording $task/$demo: $GRID, $epochs epochs -> $exp (nice 19, core $CORE)"
    set +e
    OMP_NUM_THREADS=1 "${low[@]}" "$PYTHON" -m search.run --task "$task" --space "$GRID" \
        --data "demo:$demo" --name "curves-$demo" --results "$WORK" --resume \
        --cpus-per-trial 1 --max-concurrent 1 --no-dashboard "${extra[@]}"
    rc=$?
    set -e
    if [[ $rc -ne 0 ]]; then
        echo "recording $task/$demo stopped (exit $rc); run the same command again to resume" >&2
        exit "$rc"
    fi
    out="$DEST/$demo"
    mkdir -p "$out"
    rm -rf "$out/trials" "$out/epochs"
    cp -r "$exp/trials" "$exp/epochs" "$out/"
    cp "$exp/space.yaml" "$out/space.yaml"
    done_n=$(find "$out/trials" -name '*.parquet' | wc -l)
    grid_n=$("$PYTHON" -c "from search.optimize.space import load_space; print(len(load_space('$GRID', \
'$task').grid_points()))")
    {
        echo "commit: $commit${dirty:+ (uncommitted changes)}"
        echo "recorded_at: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
        echo "task: $task/$demo"
        echo "epochs: $epochs"
        echo "trials: $done_n of $grid_n$([[ $done_n -lt $grid_n ]] && echo ' (partial)')"
        echo "command: bench/record_curves.sh $demo${TRIALS:+ (TRIALS=$TRIALS)}${EPOCHS:+ (EPOCHS=$EPOCHS)}"
    } >"$out/RECORDED_AT"
    echo "shipped $out ($done_n of $grid_n trials): python -m search.replay $out"
done
