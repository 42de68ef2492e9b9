#!/bin/sh
# Fuzz every decoder (or the formats given as arguments) with 1,000,000 inputs each (or
# $RUNS), one after the other, at low priority; a summary line per format goes to
# fuzz/results.txt, libFuzzer's output to fuzz/log-FORMAT.txt.
set -u
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
RUNS=${RUNS:-1000000}
OUT=fuzz/results.txt
echo "# $(date -u +%FT%TZ) $(uname -m) $($PY -V) runs=$RUNS" >> "$OUT"
FORMATS=${*:-modem-text xdmf kr-adapter callerid-com tci netcallerid dtmf jclip auto}
for fmt in $FORMATS; do
    start=$(date +%s)
    if nice -n 10 "$PY" fuzz/fuzz_decoders.py --format "$fmt" -runs="$RUNS" -max_len=2048 -artifact_prefix=fuzz/ \
        > "fuzz/log-$fmt.txt" 2>&1; then status=ok; else status="FAILED (see fuzz/log-$fmt.txt)"; fi
    done_line=$(grep -E "^Done [0-9]+ runs" "fuzz/log-$fmt.txt" | tail -1)
    echo "$fmt: $status; ${done_line:-no summary}; $(( $(date +%s) - start )) s" >> "$OUT"
done
