#!/usr/bin/env bash
# Installs every system package shoal uses (Debian 12), idempotently: only what is missing is
# installed. Run as root. Also installs the Node.js reference runner's npm packages when its
# package.json is present. Usage: scripts/setup.sh [--check]
#   --check   only report what is missing; exit 1 if anything is.
set -euo pipefail
cd "$(dirname "$0")/.."

PKGS=(
	# build
	build-essential meson ninja-build pkg-config clang libclang-rt-14-dev
	# data plane
	dpdk dpdk-dev libdpdk-dev libhwloc-dev libpcap-dev
	# models and inference
	libopenblas-dev libprotobuf-c-dev protobuf-c-compiler libonnx-dev libonnx-testdata
	libturbojpeg0-dev libjpeg-dev
	# scheduler
	libglpk-dev glpk-utils
	# benchmarks
	libbenchmark-dev
	# real senders and media
	ffmpeg gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good libavformat-dev libavcodec-dev libswscale-dev
	# scripts (model conversion, plots)
	python3 python3-onnx python3-numpy python3-matplotlib python3-pil
	# sample images for whole-model checks (dog.jpg, person.jpg, horses.jpg) and the street
	# video of the accuracy profiles (vtest.avi)
	darknet opencv-doc
	# namespaces and kernel clients
	iproute2 ethtool iputils-ping tcpdump
	# model reference runner (onnxruntime-node); npm itself is checked below
	nodejs
)
[ -f scripts/packages.extra ] && mapfile -t -O "${#PKGS[@]}" PKGS < <(grep -v '^#' scripts/packages.extra)

missing=()
for p in "${PKGS[@]}"; do
	[ -n "$p" ] || continue
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# some Node.js builds carry npm inside the nodejs package; Debian's own needs the npm package
command -v npm >/dev/null || missing+=(npm)

if [ "${1:-}" = "--check" ]; then
	if [ ${#missing[@]} -eq 0 ]; then echo "setup: all ${#PKGS[@]} packages present"; exit 0; fi
	echo "setup: missing: ${missing[*]}"; exit 1
fi

if [ ${#missing[@]} -eq 0 ]; then
	echo "setup: all ${#PKGS[@]} system packages already installed"
else
	if [ "$(id -u)" -ne 0 ]; then
		echo "setup: these packages are missing and installing them needs root: ${missing[*]}" >&2
		echo "setup: run 'sudo scripts/setup.sh' once, then try again" >&2
		exit 1
	fi
	if ! command -v apt-get >/dev/null; then
		echo "setup: apt-get is not available; install by hand: ${missing[*]}" >&2
		exit 1
	fi
	echo "setup: installing ${#missing[@]} packages through apt: ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/tmp/shoal-apt.log 2>&1 || {
		echo "setup: apt-get install failed; last lines of /tmp/shoal-apt.log:" >&2
		tail -n 20 /tmp/shoal-apt.log >&2
		exit 1
	}
	echo "setup: done"
fi

# npm packages of the onnxruntime reference runner (used by the models suite)
if [ -f tests/models/ort/package.json ] && [ ! -d tests/models/ort/node_modules ]; then
	echo "setup: installing the onnxruntime-node reference runner (npm ci in tests/models/ort)"
	(cd tests/models/ort && { [ -f package-lock.json ] && npm ci --no-audit --no-fund --loglevel=error ||
		npm install --no-audit --no-fund --loglevel=error; }) || {
		echo "setup: npm install of tests/models/ort failed" >&2; exit 1; }
fi
