#!/usr/bin/env bash
# The wall time of a whole `canister-vm bench` suite against the same benchmarks run as one
# `canister-vm call --query` each on a state directory (BENCHMARKS.md, section 7).
#
#   cargo build --release --bin canister-vm
#   cargo xtask build-canisters          # target/test-canisters/.../bench.wasm
#   benches/cli_bench.sh [RUNS]          # needs hyperfine (Debian: apt-get install hyperfine)
#
# Prints hyperfine's tables and the medians' ratio. Both sides start a process per command; the
# per-call side also opens, locks and appends to the state directory once per benchmark.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cvm=${CANISTER_VM:-$root/target/release/canister-vm}
wasm=${BENCH_WASM:-$root/target/test-canisters/wasm32-unknown-unknown/release/bench.wasm}
runs=${1:-20}
for f in "$cvm" "$wasm"; do
    [ -f "$f" ] || { echo "missing $f (see the header of $0)" >&2; exit 2; }
done
command -v hyperfine > /dev/null || { echo "hyperfine is not installed" >&2; exit 2; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
printf 'build_cmd: "true"\nwasm_path: %s\n' "$wasm" > canbench.yml
"$cvm" bench --persist > /dev/null
names=$(sed -n 's/^  \([a-z_0-9]*\):$/\1/p' canbench_results.yml | tr '\n' ' ')
echo "benchmarks: $names"
"$cvm" install "$wasm" --state "$work/state" > /dev/null

calls=""
for n in $names; do
    calls+="$cvm call $work/state __canbench__$n --query > /dev/null; "
done

hyperfine --warmup 3 --runs "$runs" --export-json "$work/times.json" \
    -n "bench (install + all benchmarks, one process)" "$cvm bench" \
    -n "call --query per benchmark (installed state dir)" "$calls" \
    -n "install + call --query per benchmark" \
    "rm -rf $work/fresh && $cvm install $wasm --state $work/fresh > /dev/null && ${calls//$work\/state/$work/fresh}"

python3 - "$work/times.json" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))["results"]
for x in r:
    print(f'median {x["median"] * 1e3:8.1f} ms  {x["command"]}')
m = [x["median"] for x in r]
print(f"per-call / bench = {m[1] / m[0]:.1f}x; (install + per-call) / bench = {m[2] / m[0]:.1f}x")
EOF
