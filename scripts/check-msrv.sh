#!/usr/bin/env bash
# Checks the `rust-version` the crates declare against what can be checked
# on a machine with one toolchain:
# - it must be at least the `rust-version` of every dependency in
#   Cargo.lock that a build with all features uses (normal dependencies of
#   the library and of the CLI, and the build dependencies among them);
# - the crates' own use of the standard library is checked against it by
#   clippy's `incompatible_msrv` lint, which reads the same field (clippy
#   runs with -D warnings in .ci/run).
# It does not compile with that older toolchain: none is installed here.
set -euo pipefail
cd "$(dirname "$0")/.."

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
for package in sealed-session sealed-session-cli; do
  cargo tree --locked -e normal,build --all-features -p "$package" --prefix none -f '{p}'
done | awk '{ sub(/^v/, "", $2); print $1, $2 }' | sort -u > "$work/deps.txt"
cargo metadata --locked --all-features --format-version 1 > "$work/metadata.json"

python3 - "$work/deps.txt" "$work/metadata.json" <<'PY'
import json
import sys


def parse(version):
    parts = [int(x) for x in version.split(".")]
    return tuple(parts + [0] * (3 - len(parts)))


def show(version):
    return ".".join(str(x) for x in version)


deps_file, metadata_file = sys.argv[1], sys.argv[2]
meta = json.load(open(metadata_file))
by_name_version = {(p["name"], p["version"]): p for p in meta["packages"]}
ours = {p["name"]: p for p in meta["packages"] if p["id"] in meta["workspace_members"]}
needed = ((0,), "none", "")
for line in open(deps_file):
    name, version = line.split()
    package = by_name_version[(name, version)]
    if name not in ours and package.get("rust_version"):
        needed = max(needed, (parse(package["rust_version"]), name, version))

failed = False
for name, package in sorted(ours.items()):
    declared = package.get("rust_version")
    if declared is None:
        print(f"{name}: no rust-version declared")
        failed = True
    elif parse(declared) < needed[0]:
        print(f"{name}: rust-version {declared} is below what {needed[1]} {needed[2]} needs, {show(needed[0])}")
        failed = True
    else:
        print(f"{name}: rust-version {declared} covers every locked dependency "
              f"(the highest: {needed[1]} {needed[2]} needs {show(needed[0])})")
sys.exit(1 if failed else 0)
PY
