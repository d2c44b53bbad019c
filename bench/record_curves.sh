#!/usr/bin/env bash
# Record the learning-curve tables (issue 16): the one grid in bench/curves/grid.yaml (48
# configurations, every one to the demo's full epoch budget, no early stopping) on each task
# that has embedded demo data, then ship each experiment folder's trials/, epochs/ and
# space.yaml under bench/curves/<task>/ with a RECORDED_AT file holding the commit.
#
#   bench/record_curves.sh                 # every task with an embedded demo
#   bench/record_curves.sh deepfake        # one task
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
ALL_TASKS=(deepfake attributes emotion classify)
tasks=("$@")
[[ ${#tasks[@]} -gt 0 ]] || tasks=("${ALL_TASKS[@]}")
extra=()
[[ -n "${TRIALS:-}" ]] && extra+=(--trials "$TRIALS")
[[ -n "${EPOCHS:-}" ]] && extra+=(--epochs "$EPOCHS")
low=(nice -n 19)
if command -v taskset >/dev/null; then low+=(taskset -c "$CORE"); fi
commit=$(git rev-parse HEAD 2>/dev/null || echo unknown)
changed=$(git status --porcelain --untracked-files=no 2>/dev/null | wc -l || true)
dirty=""
[[ ${changed:-0} -gt 0 ]] && dirty=1

for task in "${tasks[@]}"; do
    if ! "${low[@]}" "$PYTHON" -c "from lssat.data import resolve_data; resolve_data(None, '$task')" \
        >/dev/null 2>&1; then
        echo "skip $task: no embedded demo data for this task"
        continue
    fi
    echo "recording $task: $GRID -> $WORK/$task/curves (nice 19, core $CORE)"
    set +e
    OMP_NUM_THREADS=1 "${low[@]}" "$PYTHON" -m search.run --task "$task" --space "$GRID" \
        --name curves --results "$WORK" --resume --cpus-per-trial 1 --max-concurrent 1 \
        --no-dashboard "${extra[@]}"
    rc=$?
    set -e
    if [[ $rc -ne 0 ]]; then
        echo "recording $task stopped (exit $rc); run the same command again to resume" >&2
        exit "$rc"
    fi
    exp="$WORK/$task/curves"
    out="$DEST/$task"
    mkdir -p "$out"
    rm -rf "$out/trials" "$out/epochs"
    cp -r "$exp/trials" "$exp/epochs" "$out/"
    cp "$exp/space.yaml" "$out/space.yaml"
    done_n=$(find "$out/trials" -name '*.parquet' | wc -l)
    grid_n=$("$PYTHON" -c "from search.space import load_space; print(len(load_space('$GRID', \
'$task').grid_points()))")
    {
        echo "commit: $commit${dirty:+ (uncommitted changes)}"
        echo "recorded_at: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
        echo "task: $task"
        echo "trials: $done_n of $grid_n$([[ $done_n -lt $grid_n ]] && echo ' (partial)')"
        echo "command: bench/record_curves.sh $task${TRIALS:+ (TRIALS=$TRIALS)}${EPOCHS:+ (EPOCHS=$EPOCHS)}"
    } >"$out/RECORDED_AT"
    echo "shipped $out ($done_n of $grid_n trials): python -m search.replay $out"
done
