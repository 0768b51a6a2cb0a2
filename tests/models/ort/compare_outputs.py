#!/usr/bin/python3
"""Compare two output dirs (manifest.json + raw float32) written by run_ort.js/run_tfjs.js.

  compare_outputs.py DIR_A DIR_REF [--rtol R]

For every output of DIR_REF prints max |a - ref| and that over max |ref|; exits 1 when a
shape differs, an output is missing, or the relative difference is above --rtol (1e-4).
"""
import argparse
import json
import os
import sys

import numpy as np


def load(d):
	with open(os.path.join(d, "manifest.json"), encoding="utf-8") as f:
		return json.load(f)["outputs"]


def main():
	ap = argparse.ArgumentParser()
	ap.add_argument("a")
	ap.add_argument("ref")
	ap.add_argument("--rtol", type=float, default=1e-4)
	args = ap.parse_args()
	ma, mr = load(args.a), load(args.ref)
	bad = 0
	for k, r in mr.items():
		if k not in ma:
			print("%-8s missing in %s" % (k, args.a))
			bad += 1
			continue
		x = np.fromfile(os.path.join(args.a, ma[k]["file"]), "<f4")
		y = np.fromfile(os.path.join(args.ref, r["file"]), "<f4")
		if list(ma[k]["shape"]) != list(r["shape"]) or x.size != y.size:
			print("%-8s shape %s vs %s" % (k, ma[k]["shape"], r["shape"]))
			bad += 1
			continue
		d = float(np.abs(x - y).max())
		rel = d / max(float(np.abs(y).max()), 1e-12)
		ok = rel <= args.rtol
		bad += not ok
		print("%-8s %-18s max|diff| %.3g  max|ref| %.3g  rel %.3g  %s" % (
			k, tuple(r["shape"]), d, float(np.abs(y).max()), rel, "ok" if ok else "FAIL"))
	return 1 if bad else 0


if __name__ == "__main__":
	sys.exit(main())
