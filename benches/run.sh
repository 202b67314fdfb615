#!/usr/bin/env bash
# Runs the benchmarks (sessions: criterion medians; ratios: interleaved
# ratio check) twice, with the default build and with
# RUSTFLAGS="-C target-cpu=native" (in target/native), and prints the
# medians and the ratios BENCHMARKS.md quotes.
#
#   benches/run.sh            # both builds
#   benches/run.sh default    # one build only (or: native)
#   benches/run.sh soft       # ratios only, with RUSTFLAGS='--cfg poly1305_backend="soft"'
#                             # (Poly1305's portable backend; in target/soft)
#   benches/run.sh table      # only print the tables of the last runs
#
# Criterion arguments can be passed in BENCH_ARGS, e.g.
#   BENCH_ARGS="--warm-up-time 1 --measurement-time 5" benches/run.sh
set -euo pipefail
cd "$(dirname "$0")/.."

what="${1:-both}"
args=(${BENCH_ARGS:-})
target="${CARGO_TARGET_DIR:-target}"

run_default() {
  cargo bench --bench sessions --bench ratios -- "${args[@]}"
}

run_native() {
  RUSTFLAGS="-C target-cpu=native" CARGO_TARGET_DIR="$target/native" \
    cargo bench --bench sessions --bench ratios -- "${args[@]}"
}

run_soft() {
  RUSTFLAGS='--cfg poly1305_backend="soft"' CARGO_TARGET_DIR="$target/soft" \
    cargo bench --bench ratios -- "${args[@]}"
}

table() {
  python3 - "$@" <<'EOF'
import json, pathlib, sys

def medians(root):
    out = {}
    for bench in pathlib.Path(root).glob("**/new/benchmark.json"):
        meta = json.loads(bench.read_text())
        est = json.loads((bench.parent / "estimates.json").read_text())
        out[meta["full_id"]] = est["median"]["point_estimate"]
    return out

def fmt(ns):
    return f"{ns / 1000:.2f} µs"

for label, root in zip(sys.argv[1::2], sys.argv[2::2]):
    m = medians(root)
    if not m:
        continue
    print(f"\n## {label} ({root})\n")
    sizes = ["small", "typical", "large"]
    ids = sorted({k.split("/", 1)[1] for k in m}, key=lambda s: (s.split("/")[0] != "ours", s))
    print("| median | " + " | ".join(sizes) + " |")
    print("|---|" + "---|" * len(sizes))
    for i in ids:
        print(f"| {i} | " + " | ".join(fmt(m[f'{s}/{i}']) if f"{s}/{i}" in m else "" for s in sizes) + " |")
    t = lambda i: m[f"typical/{i}"]
    rows = [
        ("seal / peer seal", t("ours/seal") / t("peer/seal"), 0.8),
        ("open + read two / peer open", t("ours/open_read_two") / t("peer/open"), 0.5),
        ("seal / bare cipher seal", t("ours/seal") / t("cipher/seal"), 1.5),
        ("open / bare cipher open", t("ours/open") / t("cipher/open"), 1.5),
        ("deflate seal / seal", t("ours/seal_deflate") / t("ours/seal"), 3.0),
        ("(info) build + seal / peer seal", t("ours/build_seal") / t("peer/seal"), None),
        ("(info) open + read all / peer open", t("ours/open_read_all") / t("peer/open"), None),
    ]
    print("\n| typical session | ratio | target | met |")
    print("|---|---|---|---|")
    for name, r, target in rows:
        met = "" if target is None else ("yes" if r <= target else "**no**")
        print(f"| {name} | {r:.2f} | {'' if target is None else f'≤ {target}'} | {met} |")
EOF
}

case "$what" in
  both) run_default; run_native ;;
  default) run_default ;;
  native) run_native ;;
  soft) run_soft; exit 0 ;;
  table) ;;
  *) echo "usage: $0 [both|default|native|soft|table]" >&2; exit 2 ;;
esac
table default "$target/criterion" native "$target/native/criterion"
