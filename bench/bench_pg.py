#!/usr/bin/env python3
"""The measuring half of bench/run-pg.sh: hookline on PostgreSQL with 1, 2 and 3 nodes, beside
one node on SQLite.

run-pg.sh starts and stops hl-sink and the hookline nodes; this file runs the bounded phases
against them with one hl-load per node (each with a share of the connections or of the rate),
joins what the load generators and the sink recorded (bench.py's joins), keeps the figures in
a JSON file, and writes them into BENCHMARKS.md between <!-- manual:begin pg --> and
<!-- manual:end pg -->, a block that bench/run.sh's regeneration keeps.

Every subprocess and every wait here has a timeout. Loopback only.
"""
import argparse
import json
import os
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402
from bench import BenchError, Sink, die, load_results, put  # noqa: E402


def ints(s):
    return [int(x) for x in s.split(",") if x]


def shares(total, n):
    """total split into n near-equal positive parts."""
    return [total // n + (1 if i < total % n else 0) for i in range(n)]


def run_loads(tools, arg_lists, timeout):
    """Runs one hl-load per argument list at the same time; returns their JSON outputs."""
    procs = []
    try:
        for args in arg_lists:
            cmd = [os.path.join(tools, "hl-load")] + [str(a) for a in args]
            procs.append((cmd, subprocess.Popen(cmd, stdout=subprocess.PIPE,
                                                stderr=subprocess.PIPE, text=True)))
        outs = []
        deadline = time.monotonic() + timeout
        for cmd, p in procs:
            try:
                out, err = p.communicate(timeout=max(1.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                raise BenchError("hl-load did not finish within %d s: %s" % (timeout,
                                                                             " ".join(cmd)))
            if p.returncode != 0:
                raise BenchError("hl-load failed (%d): %s" % (p.returncode, err.strip()))
            if err.strip():
                print("  hl-load: " + err.strip(), file=sys.stderr)
            outs.append(json.loads(out))
        return outs
    finally:
        for _, p in procs:
            if p.poll() is None:
                p.kill()
                p.wait(10)


def combine(gens):
    """Totals of several hl-load outputs (response-time percentiles: the worst node's)."""
    dur = max(g["duration_s"] for g in gens)
    ok = sum(g["ok"] for g in gens)
    out = {"nodes": len(gens), "per_node": gens, "duration_s": dur, "ok": ok,
           "ok_per_s": round(sum(g["ok_per_s"] for g in gens), 1),
           "non2xx": sum(g["non2xx"] for g in gens), "errors": sum(g["errors"] for g in gens),
           "late_sends": sum(g["late_sends"] for g in gens)}
    for k in ("rt_us", "rt_corrected_us"):
        out[k] = {p: max(g[k][p] for g in gens) for p in ("p50", "p95", "p99", "max")}
    return out


def cpu(pids):
    return sum(bench.proc_cpu_s(p) for p in pids)


def cmd_throughput(a):
    """Closed loop on every node at once for a.duration s; deliveries counted at the sink over
    the load window; then the queue (shared) is drained."""
    ports, pids = ints(a.hl_ports), ints(a.pids)
    sink = Sink(a.sink_port)
    sink.reset()
    series = []
    stop = threading.Event()

    def sample():
        t0 = time.monotonic()
        while not stop.wait(1.0):
            try:
                series.append({"t": round(time.monotonic() - t0, 2), "sink": sink.count()})
            except (OSError, BenchError):
                pass

    cpu0 = cpu(pids)
    c0 = sink.count()
    th = threading.Thread(target=sample, daemon=True)
    t0 = time.monotonic()
    th.start()
    try:
        gens = run_loads(a.tools, [
            ["-p", port, "-a", a.app, "-k", a.key, "-K", a.kind, "-c", conns,
             "-d", a.duration, "-x", "%s%d" % (a.prefix, i), "-g", 30]
            for i, (port, conns) in enumerate(zip(ports, shares(a.conns, len(ports))))],
            a.duration + 60)
    finally:
        stop.set()
        th.join(5)
    t1 = time.monotonic()
    c1 = sink.count()
    cpu1 = cpu(pids)
    g = combine(gens)
    drain = bench.wait_drained(ports[0], a.drain_timeout)
    t2 = time.monotonic()
    c2, _ = bench.wait_count(sink, c0 + g["ok"], 5)
    window = t1 - t0
    res = {"kind": a.kind, "nodes": len(ports), "conns": a.conns, "duration_s": a.duration,
           "gen": g, "window_s": round(window, 3), "api_ok": g["ok"],
           "api_per_s": g["ok_per_s"], "delivered_window": c1 - c0,
           "deliveries_per_s": round((c1 - c0) / window, 1), "drain_s": round(drain, 3),
           "delivered_total": c2 - c0, "overall_per_s": round((c2 - c0) / (t2 - t0), 1),
           "missing": max(0, g["ok"] - (c2 - c0)), "extra": max(0, (c2 - c0) - g["ok"]),
           "hookline_cpu_s": round(cpu1 - cpu0, 2), "series": series}
    put(a.results, a.name, res)
    print("%s: %d node(s): API %.0f changes/s, %.0f deliveries/s (window %.1f s), drain %.2f s, "
          "missing %d, non-2xx %d, hookline CPU %.0f%%" % (
              a.name, len(ports), res["api_per_s"], res["deliveries_per_s"], window, drain,
              res["missing"], g["non2xx"], 100.0 * res["hookline_cpu_s"] / window))


def cmd_latency(a):
    """Open loop at a total of a.rate changes/s spread over the nodes; per change, API answer ->
    sink arrival."""
    ports, pids = ints(a.hl_ports), ints(a.pids)
    n = len(ports)
    sink = Sink(a.sink_port)
    sink.reset()
    rate = a.rate / n
    if a.warmup > 0:
        warm = run_loads(a.tools, [
            ["-p", port, "-a", a.app, "-k", a.key, "-K", a.kind, "-c", a.conns,
             "-d", a.warmup, "-r", rate, "-x", "%sw%d" % (a.prefix, i), "-g", 30]
            for i, port in enumerate(ports)], a.warmup + 60)
        bench.wait_count(sink, sum(w["ok"] for w in warm), a.wait)
        sink.reset()
    sink.record(True)
    gen_files = [os.path.join(a.run, "%s.%d.gen.txt" % (a.name, i)) for i in range(n)]
    sink_file = os.path.join(a.run, a.name + ".sink.txt")
    cpu0 = cpu(pids)
    gens = run_loads(a.tools, [
        ["-p", port, "-a", a.app, "-k", a.key, "-K", a.kind, "-c", a.conns, "-d", a.duration,
         "-r", rate, "-x", "%s%d" % (a.prefix, i), "-o", gen_files[i], "-g", 30]
        for i, port in enumerate(ports)], a.duration + 60)
    g = combine(gens)
    got, waited = bench.wait_count(sink, g["ok"], a.wait)
    sink.record(False)
    cpu1 = cpu(pids)
    recs = sink.dump(sink_file, a.dump_file)
    gen = {}
    for f in gen_files:
        gen.update(bench.read_gen(f))
    res = bench.join_latency(gen, bench.read_sink(sink_file), 1)
    res.update({"nodes": n, "rate": a.rate, "rate_per_node": rate, "duration_s": a.duration,
                "conns_per_node": a.conns, "kind": a.kind, "gen": g, "sink_count": got,
                "sink_records": recs, "wait_after_s": round(waited, 2),
                "hookline_cpu_share": round((cpu1 - cpu0) / max(g["duration_s"], 0.1), 3),
                "queue_depth_after": bench.queue_depth(ports[0])})
    put(a.results, a.name, res)
    L = res["answer_to_arrival_us"]
    print("%s: %d node(s), %d changes at %.0f/s in all, answer->arrival p50 %s p95 %s p99 %s "
          "max %s; API p50 %s p99 %s; missing %d" % (
              a.name, n, g["ok"], a.rate, bench.fmt_ms(L.get("p50")), bench.fmt_ms(L.get("p95")),
              bench.fmt_ms(L.get("p99")), bench.fmt_ms(L.get("max")),
              bench.fmt_ms(g["rt_us"]["p50"]), bench.fmt_ms(g["rt_us"]["p99"]), res["missing"]))
    if got < g["ok"]:
        print("  warning: the sink got %d of %d deliveries within %.0f s" % (got, g["ok"], a.wait),
              file=sys.stderr)


# ---- BENCHMARKS.md, block "pg" ----

def render_block(r):
    meta = r.get("meta", {})
    ms = bench.ms
    num = bench.num
    lines = ["## PostgreSQL: one, two and three nodes (beside SQLite)\n"]
    lines.append("_Generated by `bench/run-pg.sh` (`make bench-pg`) on %s at commit `%s`%s, "
                 "in %s s; this block is rewritten by each run of it and kept by "
                 "`bench/run.sh`._\n" % (
                     meta.get("date", "?"), meta.get("commit", "?"),
                     " (with uncommitted changes in src/)" if meta.get("dirty") else "",
                     meta.get("elapsed_s", "?")))
    if meta.get("mode") == "quick":
        lines.append("> **Quick mode** (`--quick`): every phase about 5 s; development numbers "
                     "only.\n")
    la = meta.get("loadavg_before")
    if la and la[0] > 0.5 * max(1, meta.get("nproc", 1)):
        lines.append("> **The machine was busy** when this run started (load average %s on %s "
                     "cores).\n" % (" ".join("%.2f" % x for x in la), meta.get("nproc", "?")))
    lines.append("| Backend | Nodes | Changes/s (API, closed loop) | Deliveries/s (sink) | "
                 "Drain after / missing | Latency at %s changes/s: p50 / p95 / p99 / max | "
                 "API p99 at that rate | Missing at that rate |" % num(meta.get("lat_rate")))
    lines.append("|---|---|---|---|---|---|---|---|")
    for cfg in meta.get("configs", []):
        t = r.get("thr_" + cfg)
        lat = r.get("lat_" + cfg)
        if not t and not lat:
            continue
        backend, nodes = ("SQLite", 1) if cfg == "sqlite" else ("PostgreSQL", int(cfg[2:]))
        cells = [backend, str(nodes)]
        if t:
            cells += [num(t["api_per_s"]), num(t["deliveries_per_s"]),
                      "%.2f s / %d" % (t["drain_s"], t["missing"])]
        else:
            cells += ["—"] * 3
        if lat:
            L = lat["answer_to_arrival_us"]
            cells += ["%s / %s / %s / %s" % (ms(L.get("p50")), ms(L.get("p95")), ms(L.get("p99")),
                                             ms(L.get("max"))),
                      ms(lat["gen"]["rt_us"]["p99"]),
                      "%d of %d" % (lat["missing"], lat["changes"])]
        else:
            cells += ["—"] * 3
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(
        "Each row is a fresh database (SQLite: a file in `build-bench/bench-pg/`; PostgreSQL: a "
        "new database on one server started by `scripts/with-postgres.sh`, %s) with one app and "
        "one webhook (all entities) to `hl-sink`. The nodes are `hookline serve` processes on "
        "the same machine sharing that database and one `--data-dir`, each with the default "
        "settings but `--api-rate 0` (no per-app request limit; `--log-level warn`). Throughput: "
        "`POST /%s`, closed loop, %s connections in "
        "all for %s s, split evenly over one `hl-load` per node; deliveries counted at the sink "
        "over the load window, then `GET /metrics` polled until `hookline_queue_depth` is 0 and "
        "the sink's count checked against the changes accepted. Latency: `POST /agents`, open "
        "loop, %s changes/s in all (the rate split evenly over one `hl-load` per node, %s "
        "connections each) for %s s after %s s of unmeasured warm-up; per change, sink arrival "
        "minus the time its API answer was read (bench.py's join on `data.uid`). PostgreSQL, the "
        "nodes, the sink and the load generators all share this machine's %s cores, so more "
        "nodes here measure contention as much as scaling.\n" % (
            meta.get("pg_settings", "?"), meta.get("thr_kind", "agents"),
            meta.get("thr_conns", "?"), meta.get("thr_s", "?"), num(meta.get("lat_rate")),
            meta.get("lat_conns", "?"), meta.get("lat_s", "?"), meta.get("warmup_s", "?"),
            meta.get("nproc", "?")))
    if meta.get("pg_version"):
        lines.append("PostgreSQL: %s.\n" % meta["pg_version"])
    cmds = meta.get("commands", [])
    if cmds:
        lines.append("Commands, as run:\n")
        lines.append("```")
        lines.extend(cmds)
        lines.append("```")
    return "\n".join(lines) + "\n"


def cmd_render(a):
    r = load_results(a.results)
    body = render_block(r)
    new = "<!-- manual:begin pg -->\n%s<!-- manual:end pg -->\n" % body
    try:
        with open(a.out) as f:
            text = f.read()
    except FileNotFoundError:
        text = ""
    m = bench.MANUAL_RE.search(text)
    while m and m.group(1) != "pg":
        m = bench.MANUAL_RE.search(text, m.end())
    if m:
        text = text[:m.start()] + new.rstrip("\n") + text[m.end():]
        if not text.endswith("\n"):
            text += "\n"
    else:
        text = text + ("\n" if text and not text.endswith("\n\n") else "") + new
    tmp = a.out + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, a.out)
    print("wrote the pg block of " + a.out)
    print(body)


def main():
    p = argparse.ArgumentParser(description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)
    for name, fn in (("throughput", cmd_throughput), ("latency", cmd_latency)):
        s = sub.add_parser(name)
        s.set_defaults(fn=fn)
        for k in ("--tools", "--results", "--app", "--key", "--name", "--prefix", "--hl-ports",
                  "--pids"):
            s.add_argument(k, required=True)
        s.add_argument("--sink-port", type=int, required=True)
        s.add_argument("--kind", default="agents")
        s.add_argument("--duration", type=float, default=15)
        s.add_argument("--conns", type=int, default=64)
        if name == "throughput":
            s.add_argument("--drain-timeout", type=float, default=120)
        else:
            for k in ("--run", "--dump-file"):
                s.add_argument(k, required=True)
            s.add_argument("--rate", type=float, default=500)
            s.add_argument("--wait", type=float, default=60)
            s.add_argument("--warmup", type=float, default=0)
    s = sub.add_parser("render")
    s.set_defaults(fn=cmd_render)
    s.add_argument("--results", required=True)
    s.add_argument("--out", required=True)
    a = p.parse_args()
    try:
        a.fn(a)
    except BenchError as e:
        die(str(e))
    except (OSError, ValueError, KeyError) as e:
        die("%s: %s: %s" % (a.cmd, type(e).__name__, e))


if __name__ == "__main__":
    main()
