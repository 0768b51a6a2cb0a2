#!/usr/bin/python3
"""Summary table and plot of a shoal demo run (scripts/demo.sh).

usage: demo-report.py SERVER_LOG CLIENT_CSV CLIENT_OUT FFMPEG_FRAMES PNG
                      [--slo-ms MS] [--client-port P] [--ffmpeg-port P] [--samples TSV]

  SERVER_LOG     shoal-server's output (its final `client:` and `serve:` lines are read)
  CLIENT_CSV     shoal-client --csv: one row per frame
  CLIENT_OUT     shoal-client's stdout (a file), or its last line itself (`client: ...`)
  FFMPEG_FRAMES  frames the ffmpeg sender encoded and sent
  PNG            the plot to write
  --slo-ms       the shoal-client's SLO (default 200)
  --client-port  local RTP port of the shoal-client (default 41000)
  --ffmpeg-port  local RTP port of the ffmpeg sender (default 40000)
  --samples      metrics samples written by demo.sh while streaming (t, client, counters)

Prints the table to stdout, with what each number means; exit 1 when an input is unusable.
"""
import argparse
import csv
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def kv(line):
    """key=value fields of one line into a dict (the leading `name:` is dropped)."""
    out = {}
    for tok in line.split()[1:]:
        if "=" in tok:
            k, v = tok.split("=", 1)
            out[k] = v
    return out


def read_server(path):
    clients, serve, ready = {}, None, None
    with open(path, errors="replace") as f:
        for line in f:
            if line.startswith("client: addr="):
                c = kv(line)
                clients[c["addr"].rsplit(":", 1)[1]] = c  # by local port; the last line wins
            elif line.startswith("serve: frames="):
                serve = kv(line)
            elif line.startswith("ready:"):
                ready = kv(line)
    return clients, serve, ready


def read_client_line(arg):
    text = arg
    if not arg.startswith("client:"):
        with open(arg, errors="replace") as f:
            lines = [ln for ln in f if ln.startswith("client: ssrc=")]
        if not lines:
            return None
        text = lines[-1]
    return kv(text)


def read_csv(path):
    rows = []
    with open(path, newline="") as f:
        for r in csv.DictReader(f):
            rows.append(r)
    return rows


def pct(vals, p):
    """p-th percentile, nearest rank (the convention of shoal-client's own p50/p99)."""
    if not vals:
        return float("nan")
    s = sorted(vals)
    k = max(0, min(len(s) - 1, int(-(-p * len(s) // 100)) - 1))
    return s[k]


def read_samples(path):
    """t client in served dropped missed variant lat_sum lat_count, one row per sample."""
    per = {}
    if not path or not os.path.exists(path):
        return per
    with open(path) as f:
        for line in f:
            p = line.split()
            if len(p) != 9 or p[0] == "t":
                continue
            port = p[1].split("/")[0].rsplit(":", 1)[1]
            per.setdefault(port, []).append(
                (float(p[0]), int(p[2]), int(p[3]), int(p[4]), int(p[5]), int(p[6]),
                 float(p[7]), int(p[8])))
    return per


def interval_latency(samples):
    """server-side mean latency (ms) of the frames served in each sample interval."""
    t, ms = [], []
    for a, b in zip(samples, samples[1:]):
        dn = b[7] - a[7]
        if dn > 0:
            t.append(b[0])
            ms.append(1e3 * (b[6] - a[6]) / dn)
    return t, ms


def main():
    ap = argparse.ArgumentParser(description="shoal demo summary and plot")
    ap.add_argument("server_log")
    ap.add_argument("client_csv")
    ap.add_argument("client_out")
    ap.add_argument("ffmpeg_frames", type=int)
    ap.add_argument("png")
    ap.add_argument("--slo-ms", type=float, default=200)
    ap.add_argument("--client-port", default="41000")
    ap.add_argument("--ffmpeg-port", default="40000")
    ap.add_argument("--samples")
    a = ap.parse_args()

    try:
        srv, serve, ready = read_server(a.server_log)
        rows = read_csv(a.client_csv)
        cline = read_client_line(a.client_out)
    except (OSError, csv.Error, KeyError) as e:
        print(f"demo-report: {e}", file=sys.stderr)
        return 1
    samples = read_samples(a.samples)

    # ---- shoal-client, from its CSV (client clock: send start -> RESULT/DROP received) ----
    res = [r for r in rows if r["status"] == "result"]
    lat = [float(r["latency_ms"]) for r in res]
    sent = len(rows)
    served = len(res)
    dropped = sum(1 for r in rows if r["status"] == "drop")
    lost = sum(1 for r in rows if r["status"] not in ("result", "drop"))
    in_slo = sum(1 for x in lat if x <= a.slo_ms)
    variants = {}
    for r in res:
        variants[r["variant"]] = variants.get(r["variant"], 0) + 1
    vtxt = ",".join(f"{v}:{n}" for v, n in sorted(variants.items(), key=lambda x: int(x[0])))

    sc = srv.get(a.client_port, {})
    ff = srv.get(a.ffmpeg_port, {})
    ffv = sorted({s[5] for s in samples.get(a.ffmpeg_port, []) if s[5] > 0})

    def g(d, k):
        return d.get(k, "-")

    hdr = (f"{'stream':<24} {'kind':<13} {'sent':>5} {'served':>6} {'dropped':>7} "
           f"{'SLO':>5} {'misses':>6} {'p50_ms':>7} {'p99_ms':>7}  {'latency':<22} variants")
    print(hdr)
    print("-" * len(hdr))
    cid = f"10.77.0.2:{a.client_port}"
    print(f"{cid:<24} {'shoal-client':<13} {sent:>5} {served:>6} {dropped + lost:>7} "
          f"{a.slo_ms:>5.0f} {sent - in_slo:>6} {pct(lat, 50):>7.1f} {pct(lat, 99):>7.1f}  "
          f"{'end-to-end (client)':<22} {vtxt or '-'}")
    print(f"{'  same, server view':<24} {'':<13} {g(sc, 'frames'):>5} {g(sc, 'results'):>6} "
          f"{g(sc, 'dropped'):>7} {g(sc, 'slo_ms'):>5} {g(sc, 'missed'):>6} "
          f"{'<=' + g(sc, 'p50_ms'):>7} {'<=' + g(sc, 'p99_ms'):>7}  {'server side only':<22} "
          f"last={g(sc, 'variant')}")
    fid = f"10.77.0.2:{a.ffmpeg_port}"
    print(f"{fid:<24} {'ffmpeg':<13} {a.ffmpeg_frames:>5} {g(ff, 'results'):>6} "
          f"{g(ff, 'dropped'):>7} {g(ff, 'slo_ms'):>5} {g(ff, 'missed'):>6} "
          f"{'<=' + g(ff, 'p50_ms'):>7} {'<=' + g(ff, 'p99_ms'):>7}  {'server side only':<22} "
          f"{','.join(map(str, ffv)) or '-'} (last={g(ff, 'variant')})")
    print()
    print("what the numbers mean:")
    print("  sent      frames the sender sent (shoal-client: CSV rows; ffmpeg: its own frame"
          " count); server view: frames the server received")
    print("  served    frames answered with a RESULT (detections)")
    print("  dropped   frames answered with a DROP (late, not served, overload), plus"
          f" shoal-client frames with no answer at all ({lost} here)")
    print(f"  SLO       latency objective (ms): {a.slo_ms:.0f} registered by shoal-client; ffmpeg"
          " never registers and gets the server's default (its --slo-ms)")
    print("  misses    shoal-client: frames without a RESULT within the SLO (client clock);"
          " server view: frames the server answered late or dropped as late")
    print("  p50/p99   shoal-client: send start -> RESULT received, over the served frames"
          " (CSV, exact); server side: first packet -> RESULT sent, read from the server's"
          " histogram as the bucket's upper bound (<=)")
    print("  variants  model input size (nanodet-N): size:frames served at it (shoal-client);"
          " for ffmpeg the sizes the scheduler assigned at the 2 s metrics samples")
    if sc.get("state") == "left":
        print("  server view of the shoal-client: it said BYE, so its line holds the server's"
              " statistics at the last control round before that (may be a few frames short)")
    if ff:
        print(f"  ffmpeg: the server received {g(ff, 'frames')} of its {a.ffmpeg_frames} frames;"
              " it ignores the RESULT/DROP answers (no feedback)")
    if cline:
        print(f"  shoal-client's own line: sent={g(cline, 'sent')} results={g(cline, 'results')}"
              f" drops={g(cline, 'drops')} lost={g(cline, 'lost')} miss={g(cline, 'miss')}"
              f" p50_ms={g(cline, 'p50_ms')} p99_ms={g(cline, 'p99_ms')}"
              f" (0.1 ms bins)")
    if serve:
        print(f"  server total: frames={g(serve, 'frames')} results={g(serve, 'results')}"
              f" drops={g(serve, 'drops')} late={g(serve, 'late')} backend={g(serve, 'backend')}"
              f" device_busy={g(serve, 'device_busy')}"
              + (f" driver={g(ready, 'driver')}" if ready else ""))

    # ---- plot --------------------------------------------------------------------------------
    have_s = bool(samples)
    n = 3 if have_s else 2
    fig, ax = plt.subplots(n, 1, figsize=(10, 3.2 * n), sharex=True)
    t = [float(r["send_ms"]) / 1e3 for r in res]
    ax[0].plot(t, lat, ".", ms=4, label="shoal-client: RESULT latency (end-to-end)")
    dt = [float(r["send_ms"]) / 1e3 for r in rows if r["status"] != "result"]
    if dt:
        ax[0].plot(dt, [0] * len(dt), "x", color="tab:red", label="DROP / no answer")
    ax[0].axhline(a.slo_ms, color="tab:red", lw=1, ls="--", label=f"SLO {a.slo_ms:.0f} ms")
    ax[0].set_ylabel("latency (ms)")
    ax[0].set_title("shoal-client: per-frame end-to-end latency (client clock)")
    ax[0].legend(loc="upper right", fontsize=8)
    ax[1].step(t, [int(r["variant"]) for r in res], where="post", lw=2,
               label="shoal-client: variant of its RESULTs")
    ax[1].step([float(r["send_ms"]) / 1e3 for r in rows], [int(r["width"]) for r in rows],
               where="post", lw=1, alpha=0.7, label="shoal-client: frame width it sent (ASSIGN)")
    fs = samples.get(a.ffmpeg_port, [])
    if fs:
        ax[1].step([s[0] for s in fs], [s[5] for s in fs], where="post", lw=1, ls="--",
                   label="ffmpeg: variant assigned (server, sampled every 2 s)")
    ax[1].set_ylabel("pixels")
    ax[1].set_title("model variant (nanodet input size) and frame width over time")
    ax[1].legend(loc="upper right", fontsize=8)
    if have_s:
        for port, name in ((a.client_port, "shoal-client"), (a.ffmpeg_port, "ffmpeg")):
            st, ms = interval_latency(samples.get(port, []))
            if st:
                ax[2].plot(st, ms, "o-", ms=3, label=f"{name}: server-side mean per interval")
        ax[2].set_ylabel("latency (ms)")
        ax[2].set_title("server side (first packet -> RESULT), from /metrics every 2 s")
        ax[2].legend(loc="upper right", fontsize=8)
    ax[-1].set_xlabel("seconds since the streams started")
    fig.tight_layout()
    fig.savefig(a.png, dpi=100)
    print(f"plot: {a.png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
