#!/usr/bin/python3
"""Summaries and plots of scripts/experiment.sh.

  experiment-plot.py row --accuracy CSV --slo-ms S --warmup W --duration D CLIENT.csv...
      one run's figures from its clients' per-frame CSVs (frames sent in [W, W + D) s):
      frames,results,drops,lost,miss,acc,p50_ms,p99_ms,refused
      (refused: frames answered DROP not_served, the server's admission control; in drops
      and in miss too)
  experiment-plot.py plot DIR
      DIR/runs.csv (and the per-frame CSVs under DIR/runs, their measured window in
      DIR/window.txt) -> accuracy.png, miss.png,
      latency_cdf.png, summary.txt; prints the summary, whose last line is
      experiment: adaptive miss=… acc=… | static-small miss=… acc=… | …

A frame is a hit when it got a RESULT within its SLO; anything else (DROP, lost, late RESULT)
is a miss. Accuracy per frame: the F1 of the RESULT's variant against the largest variant
(the profile's accuracy.csv) for a hit, 0 for a miss; acc is its mean over the frames.
p50/p99: end-to-end latency of the RESULTs (late ones included).
"""
import csv
import math
import os
import sys

POLICIES = ["adaptive", "static-small", "static-mid", "static-large"]


def die(msg):
    print(f"experiment-plot.py: {msg}", file=sys.stderr)
    sys.exit(2)


def load_accuracy(path):
    """variant input size -> F1 (rows `family-SIZE,f1`, # comments)"""
    f1 = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#") or line.startswith("variant,"):
                continue
            name, val = line.split(",")[:2]
            f1[int(name.rsplit("-", 1)[1])] = float(val)
    if not f1:
        die(f"no variants in {path}")
    return f1


def frames(paths, warmup, duration):
    """rows of the per-frame CSVs sent within the measured window"""
    for p in paths:
        with open(p, newline="") as f:
            for r in csv.DictReader(f):
                t = float(r["send_ms"]) / 1e3
                if warmup <= t < warmup + duration:
                    yield r


def quantile(sorted_vals, q):
    if not sorted_vals:
        return float("nan")
    i = min(len(sorted_vals) - 1, max(0, math.ceil(q * len(sorted_vals)) - 1))
    return sorted_vals[i]


def fmt(x, nd=4):
    return "nan" if x != x else f"{x:.{nd}f}"


def frame_score(r, slo, f1):
    """(hit, accuracy, latency of a RESULT or None)"""
    if r["status"] != "result":
        return False, 0.0, None
    lat = float(r["latency_ms"])
    hit = lat <= slo
    acc = f1.get(int(r["variant"]), 0.0) if hit and r["variant"] else 0.0
    return hit, acc, lat


def cmd_row(argv):
    import argparse
    ap = argparse.ArgumentParser(prog="experiment-plot.py row")
    ap.add_argument("--accuracy", required=True)
    ap.add_argument("--slo-ms", type=float, required=True)
    ap.add_argument("--warmup", type=float, default=0)
    ap.add_argument("--duration", type=float, default=1e9)
    ap.add_argument("csv", nargs="*")
    a = ap.parse_args(argv)
    f1 = load_accuracy(a.accuracy)
    n = res = drops = lost = miss = refused = 0
    acc = 0.0
    lats = []
    for r in frames(a.csv, a.warmup, a.duration):
        n += 1
        st = r["status"]
        res += st == "result"
        drops += st == "drop"
        refused += st == "drop" and r["reason"] == "not_served"
        lost += st in ("lost", "pending")
        hit, fa, lat = frame_score(r, a.slo_ms, f1)
        miss += not hit
        acc += fa
        if lat is not None:
            lats.append(lat)
    lats.sort()
    print(f"{n},{res},{drops},{lost},{fmt(miss / n if n else float('nan'))},"
          f"{fmt(acc / n if n else float('nan'))},{fmt(quantile(lats, 0.5), 1)},"
          f"{fmt(quantile(lats, 0.99), 1)},{refused}")


def read_runs(d):
    path = os.path.join(d, "runs.csv")
    if not os.path.exists(path):
        die(f"{path} absent")
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    for r in rows:
        for k in ("clients", "slo_ms", "fps", "frames", "results", "drops", "lost"):
            r[k] = int(r[k])
        r["refused"] = int(r.get("refused") or 0)  # absent in older runs.csv
        for k in ("miss", "acc", "p50_ms", "p99_ms"):
            r[k] = float(r[k])
    return rows


def read_window(d):
    """the measured window of every run: DIR/window.txt `warmup=W duration=D` (seconds)"""
    kv = {"warmup": "0", "duration": "1e9"}
    path = os.path.join(d, "window.txt")
    if os.path.exists(path):
        with open(path) as f:
            kv.update(x.split("=", 1) for x in f.read().split() if "=" in x)
    return float(kv["warmup"]), float(kv["duration"])


def run_dir(d, r):
    return os.path.join(d, "runs",
                        f"{r['policy']}-c{r['clients']}-slo{r['slo_ms']}-fps{r['fps']}-{r['trace']}")


def mean(xs):
    xs = [x for x in xs if x == x]
    return sum(xs) / len(xs) if xs else float("nan")


def target_lines(rows, pols):
    """Per client count, each policy's mean miss / accuracy / refused share; then the 1 %
    target where static-small (every frame at the smallest variant, no admission) stays
    within 1 %, the runs taken as not overloaded."""
    out = ["per client count, mean over its runs: miss / acc / refused share of frames",
           f"{'clients':>7} " + " ".join(f"{p:>24}" for p in pols)]
    for c in sorted({r["clients"] for r in rows}):
        cells = []
        for p in pols:
            rs = [r for r in rows if r["policy"] == p and r["clients"] == c]
            ref = mean([r["refused"] / r["frames"] if r["frames"] else 0.0 for r in rs])
            cells.append(f"{mean([r['miss'] for r in rs]):.3f} / "
                         f"{mean([r['acc'] for r in rs]):.3f} / {ref:.3f}")
        out.append(f"{c:>7} " + " ".join(f"{x:>24}" for x in cells))
    if "adaptive" in pols and "static-small" in pols:
        key = lambda r: (r["clients"], r["slo_ms"], r["fps"], r["trace"])
        small = {key(r): r for r in rows if r["policy"] == "static-small"}
        ok = [r for r in rows if r["policy"] == "adaptive" and key(r) in small and
              small[key(r)]["miss"] <= 0.01]
        if ok:
            within = sum(1 for r in ok if r["miss"] <= 0.01)
            out.append(f"target: where static-small misses <= 1 % ({len(ok)} runs), adaptive "
                       f"<= 1 % in {within}, mean miss {mean([r['miss'] for r in ok]):.4f}, "
                       f"max {max(r['miss'] for r in ok):.4f}")
    return out


def cmd_plot(argv):
    if len(argv) != 1:
        die("usage: experiment-plot.py plot DIR")
    d = argv[0]
    rows = read_runs(d)
    warm, dur = read_window(d)
    if not rows:
        die("runs.csv has no runs")
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pols = [p for p in POLICIES if any(r["policy"] == p for r in rows)]
    pols += sorted({r["policy"] for r in rows} - set(pols))
    colour = {p: f"C{i}" for i, p in enumerate(pols)}
    slos = sorted({r["slo_ms"] for r in rows})
    fpss = sorted({r["fps"] for r in rows})
    traces = sorted({r["trace"] for r in rows})

    def per_clients(key, fname, ylabel, title):
        fig, axes = plt.subplots(len(fpss), len(slos), squeeze=False, sharey=True,
                                 figsize=(max(6.5, 4.2 * len(slos) + 0.8), 3.4 * len(fpss) + 0.8))
        for yi, fps in enumerate(fpss):
            for xi, slo in enumerate(slos):
                ax = axes[yi][xi]
                for p in pols:
                    pts = sorted((r["clients"], r[key]) for r in rows
                                 if r["policy"] == p and r["slo_ms"] == slo and r["fps"] == fps)
                    if pts:
                        ax.plot([x for x, _ in pts], [y for _, y in pts], "o-",
                                color=colour[p], label=p)
                ax.set_xscale("log", base=2)
                xs = sorted({r["clients"] for r in rows})
                ax.set_xticks(xs)
                ax.set_xticklabels([str(x) for x in xs])
                ax.set_title(f"SLO {slo} ms, {fps} fps", fontsize=10)
                ax.set_ylim(0, 1.02)
                ax.grid(alpha=0.3)
                if yi == len(fpss) - 1:
                    ax.set_xlabel("clients")
                if xi == 0:
                    ax.set_ylabel(ylabel)
        axes[0][0].legend(fontsize=8)
        fig.suptitle(f"{title} (trace {', '.join(traces)})", fontsize=11)
        fig.tight_layout()
        fig.savefig(os.path.join(d, fname), dpi=110)
        plt.close(fig)

    per_clients("acc", "accuracy.png", "mean F1 per frame (miss = 0)",
                "Accuracy: F1 vs the largest variant, a miss counts 0")
    per_clients("miss", "miss.png", "SLO miss rate", "SLO miss rate")

    # end-to-end latency CDF per policy over every measured frame of its runs: the fraction
    # of frames answered with a RESULT within x ms (DROPs and lost frames never arrive, so a
    # curve levels off at the policy's RESULT fraction)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    xmax = max(slos)
    for p in pols:
        lats, n = [], 0
        for r in rows:
            if r["policy"] != p:
                continue
            rd = run_dir(d, r)
            paths = [os.path.join(rd, f) for f in sorted(os.listdir(rd))
                     if f.startswith("client-") and f.endswith(".csv")] if os.path.isdir(rd) else []
            for x in frames(paths, warm, dur):
                n += 1
                if x["status"] == "result":
                    lats.append(float(x["latency_ms"]))
        if not n:
            continue
        lats.sort()
        if lats:
            xmax = max(xmax, lats[-1])
        ys = [(i + 1) / n for i in range(len(lats))]
        ax.step(lats, ys, where="post", color=colour[p], label=f"{p} ({n} frames)")
    for slo in slos:
        ax.axvline(slo, color="grey", ls=":", lw=1)
    ax.set_xscale("log")
    ticks = [t for t in (5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000) if t <= 2 * xmax]
    ax.set_xticks(ticks)
    ax.set_xticklabels([str(t) for t in ticks])
    ax.set_xlabel("end-to-end latency, send to RESULT (ms); dotted: SLOs")
    ax.set_ylabel("fraction of frames with a RESULT")
    ax.set_ylim(0, 1.01)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, loc="upper left")
    ax.set_title("End-to-end latency CDF per policy (DROP / lost never arrive)")
    fig.tight_layout()
    fig.savefig(os.path.join(d, "latency_cdf.png"), dpi=110)
    plt.close(fig)

    lines = []
    hdr = (f"{'policy':<13} {'clients':>7} {'slo_ms':>6} {'fps':>4} {'trace':<9} {'frames':>7} "
           f"{'results':>7} {'drops':>6} {'lost':>5} {'miss':>7} {'acc':>7} {'p50_ms':>7} "
           f"{'p99_ms':>7} {'refused':>7}")
    lines.append(hdr)
    order = {p: i for i, p in enumerate(pols)}
    for r in sorted(rows, key=lambda r: (r["trace"], r["fps"], r["slo_ms"], r["clients"],
                                         order[r["policy"]])):
        lines.append(f"{r['policy']:<13} {r['clients']:>7} {r['slo_ms']:>6} {r['fps']:>4} "
                     f"{r['trace']:<9} {r['frames']:>7} {r['results']:>7} {r['drops']:>6} "
                     f"{r['lost']:>5} {r['miss']:>7.4f} {r['acc']:>7.4f} {r['p50_ms']:>7.1f} "
                     f"{r['p99_ms']:>7.1f} {r['refused']:>7}")
    lines.append("accuracy: F1 of the RESULT's variant vs the largest variant; a miss "
                 "(DROP, lost, RESULT after the SLO) counts 0; refused: DROP not_served "
                 "(admission; also counted as misses)")
    lines.extend(target_lines(rows, pols))
    lines.append(f"plots: {os.path.join(d, 'accuracy.png')} {os.path.join(d, 'miss.png')} "
                 f"{os.path.join(d, 'latency_cdf.png')}")
    parts = []
    for p in pols:
        rs = [r for r in rows if r["policy"] == p]
        parts.append(f"{p} miss={mean([r['miss'] for r in rs]):.4f} "
                     f"acc={mean([r['acc'] for r in rs]):.4f}")
    lines.append("experiment: " + " | ".join(parts))
    text = "\n".join(lines) + "\n"
    with open(os.path.join(d, "summary.txt"), "w") as f:
        f.write(text)
    sys.stdout.write(text)


def main():
    if len(sys.argv) < 2 or sys.argv[1] in ("-h", "--help"):
        print(__doc__.strip())
        sys.exit(0 if len(sys.argv) >= 2 else 2)
    cmd, argv = sys.argv[1], sys.argv[2:]
    if cmd == "row":
        cmd_row(argv)
    elif cmd == "plot":
        cmd_plot(argv)
    else:
        die(f"unknown command '{cmd}' (row or plot)")


if __name__ == "__main__":
    main()
