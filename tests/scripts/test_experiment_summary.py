#!/usr/bin/python3
"""experiment-plot.py plot: the summary's per-client-count means and the 1 % check (runs
where static-small misses <= 1 % taken as not overloaded; how many of them the adaptive
policy keeps within 1 %), on a runs.csv written here."""
import os
import subprocess
import sys
import tempfile

plot = sys.argv[1]
HDR = "policy,clients,slo_ms,fps,trace,frames,results,drops,lost,miss,acc,p50_ms,p99_ms,refused"
rows = [
    # (policy, clients, slo, fps, frames, miss, acc, refused)
    ("adaptive", 1, 100, 15, 200, 0.0000, 0.40, 0),      # small ok, adaptive ok
    ("static-small", 1, 100, 15, 200, 0.0050, 0.08, 0),
    ("adaptive", 1, 150, 15, 200, 0.0200, 0.30, 0),      # small ok, adaptive not
    ("static-small", 1, 150, 15, 200, 0.0100, 0.08, 0),
    ("adaptive", 4, 100, 15, 800, 0.5000, 0.05, 400),    # overloaded: not counted
    ("static-small", 4, 100, 15, 800, 0.3000, 0.05, 0),
]
with tempfile.TemporaryDirectory() as d:
    with open(os.path.join(d, "runs.csv"), "w") as f:
        f.write(HDR + "\n")
        for p, c, slo, fps, n, miss, acc, ref in rows:
            res = round(n * (1 - miss))
            f.write(f"{p},{c},{slo},{fps},lte,{n},{res},{n - res},0,{miss:.4f},{acc:.4f},"
                    f"10.0,20.0,{ref}\n")
    with open(os.path.join(d, "window.txt"), "w") as f:
        f.write("warmup=3 duration=15\n")
    out = subprocess.run([plot, "plot", d], capture_output=True, text=True)
    sys.stdout.write(out.stdout + out.stderr)
    assert out.returncode == 0, "plot failed"
    lines = out.stdout.splitlines()
    assert lines[-1].startswith("experiment: adaptive miss=0.1733 acc=0.2500 | "
                                "static-small miss=0.1050"), lines[-1]
    check = [l for l in lines if l.startswith("target:")]
    assert check == ["target: where static-small misses <= 1 % (2 runs), adaptive <= 1 % in 1, "
                     "mean miss 0.0100, max 0.0200"], check
    table = {l.split()[0]: l for l in lines if l.strip() and l.split()[0] in ("1", "4")}
    # 1 client: adaptive mean miss 0.010, acc 0.350, nothing refused
    assert "0.010 / 0.350 / 0.000" in table["1"], table["1"]
    # 4 clients: adaptive refused half its frames; static-small none
    assert "0.500 / 0.050 / 0.500" in table["4"] and "0.300 / 0.050 / 0.000" in table["4"], \
        table["4"]
    for png in ("accuracy.png", "miss.png", "latency_cdf.png"):
        assert os.path.getsize(os.path.join(d, png)) > 0, png
print("ok")
