#!/usr/bin/python3
"""Plot a shoal-profile result: accuracy and p99 latency per variant.

  plot-profile.py DIR [--out FILE]

Reads DIR/accuracy.csv (variant,f1) and DIR/latency.csv (variant,batch,p50_ms,p99_ms), either
may be absent, lines starting with '#' are comments, and writes DIR/profile.png (or FILE):
F1 against the largest variant per variant, and p99 latency per variant for batch 1, 4, 8,
16 (those present) and the largest batch. Exit 1 with one line when neither file can be read.
"""
import argparse
import csv
import os
import re
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def size_of(name):
	m = re.search(r"(\d+)\s*$", name)
	if not m:
		raise ValueError("variant '%s' does not end in its input size" % name)
	return int(m.group(1))


def rows(path, header):
	"""Data rows of a profile CSV as lists of strings, or None when the file is absent."""
	if not os.path.exists(path):
		return None
	with open(path, encoding="utf-8") as f:
		lines = [l for l in f.read().splitlines() if l.strip() and not l.startswith("#")]
	if not lines or not lines[0].startswith(header):
		raise ValueError("%s: header must be %s" % (path, header))
	return list(csv.reader(lines[1:]))


def main():
	ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
	ap.add_argument("dir", help="directory holding latency.csv and/or accuracy.csv")
	ap.add_argument("--out", help="output PNG (default DIR/profile.png)")
	args = ap.parse_args()
	try:
		acc = rows(os.path.join(args.dir, "accuracy.csv"), "variant,f1")
		lat = rows(os.path.join(args.dir, "latency.csv"), "variant,batch,p50_ms,p99_ms")
		if acc is None and lat is None:
			raise ValueError("%s: no accuracy.csv or latency.csv" % args.dir)
		acc_pts = sorted((size_of(r[0]), float(r[1])) for r in acc or [])
		p99 = {}
		for r in lat or []:
			p99.setdefault(int(r[1]), []).append((size_of(r[0]), float(r[3])))
	except (OSError, ValueError, IndexError) as e:
		print("plot-profile: %s" % e, file=sys.stderr)
		return 1

	parts = os.path.normpath(os.path.abspath(args.dir)).split(os.sep)
	title = "/".join(parts[-2:])
	fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
	ax = axes[0]
	if acc_pts:
		xs, ys = zip(*acc_pts)
		ax.plot(xs, ys, "o-", color="tab:green")
		ax.set_xticks(xs)
		ax.tick_params(axis="x", labelrotation=60, labelsize=7)
	ax.set_ylim(0, 1.05)
	ax.set_xlabel("input size (px, square)")
	ax.set_ylabel("F1 vs the largest variant")
	ax.set_title("accuracy (%s)" % title)
	ax.grid(alpha=0.3)

	ax = axes[1]
	shown = sorted(set(b for b in (1, 4, 8, 16) if b in p99) | ({max(p99)} if p99 else set()))
	for b in shown:
		xs, ys = zip(*sorted(p99[b]))
		ax.plot(xs, ys, "o-", markersize=3, label="batch %d" % b)
	if p99:
		ax.set_xticks(xs)
		ax.tick_params(axis="x", labelrotation=60, labelsize=7)
		ax.set_yscale("log")
		ax.legend()
	ax.set_xlabel("input size (px, square)")
	ax.set_ylabel("p99 latency (ms)")
	ax.set_title("latency (%s)" % title)
	ax.grid(alpha=0.3, which="both")
	fig.tight_layout()
	out = args.out or os.path.join(args.dir, "profile.png")
	try:
		fig.savefig(out, dpi=110)
	except OSError as e:
		print("plot-profile: %s: %s" % (out, e.strerror), file=sys.stderr)
		return 1
	return 0


if __name__ == "__main__":
	sys.exit(main())
