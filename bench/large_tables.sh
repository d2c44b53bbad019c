#!/usr/bin/env bash
# Everything issue 25 reads from the large learning-curve tables, once they are recorded
# (bench/record_curves.sh --large): per table its signal check, the replay of our searchers
# (random, random+ASHA, TPE, TPE+ASHA; 100 seeds; the grid's top 1 %), the peers on the same
# table and clock, then the leave-one-table-out choice of the defaults over all the tables.
#
#   bench/large_tables.sh                                  # bench/curves/sbi_1k, digits_1k
#   bench/large_tables.sh bench/curves/sbi_1k OTHER_TABLE  # some tables (LOTO needs two)
#
# Writes TABLE/signal.csv, TABLE/replay/, TABLE/peers/ and bench/curves/tuning/loto.csv (the
# LOTO step is resumable: its finished replays are kept). A table whose RECORDED_AT still says
# it is partial is refused (FORCE=1 runs anyway, for a smoke check). Hours of CPU: it runs at
# nice 19. Environment: PYTHON (default .venv/bin/python), SEEDS (100), TOP (0.01), PEERS=0
# skips the peers (their venv: bench/peers.py --help).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
SEEDS=${SEEDS:-100}
TOP=${TOP:-0.01}
tables=("$@")
[[ ${#tables[@]} -gt 0 ]] || tables=(bench/curves/sbi_1k bench/curves/digits_1k)
low=(nice -n 19)

for t in "${tables[@]}"; do
    [[ -d "$t/trials" ]] || { echo "error: $t holds no recorded table (no trials/)" >&2; exit 2; }
    if [[ -z "${FORCE:-}" ]] && grep -q "partial" "$t/RECORDED_AT" 2>/dev/null; then
        echo "error: $t is still partial ($t/RECORDED_AT); finish it with" \
            "bench/record_curves.sh --large, or FORCE=1 for a smoke check" >&2
        exit 2
    fi
done
for t in "${tables[@]}"; do
    echo "== $t: signal"
    "$PYTHON" bench/table_signal.py "$t" || echo "note: no signal check for $t"
    echo "== $t: replay ($SEEDS seeds, top $TOP)"
    "${low[@]}" "$PYTHON" -m search.replay "$t" --seeds "$SEEDS" --top "$TOP"
    if [[ "${PEERS:-1}" != 0 ]]; then
        echo "== $t: peers ($SEEDS seeds, top $TOP)"
        "${low[@]}" "$PYTHON" bench/peers.py "$t" --seeds "$SEEDS" --top "$TOP"
    fi
done
if [[ ${#tables[@]} -ge 2 ]]; then
    echo "== leave one table out: ${tables[*]}"
    "${low[@]}" "$PYTHON" bench/choose_defaults.py "${tables[@]}" --top "$TOP"
fi
