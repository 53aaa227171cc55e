#!/usr/bin/env python3
"""The measuring half of bench/run.sh.

run.sh starts and stops the long-lived processes (hl-sink, nginx, hookline); this file runs the
bounded phases against them, joins what the load generator and the sink recorded, keeps every
figure in results.json, and renders BENCHMARKS.md (keeping the hand-written sections).

Every subprocess and every wait here has a timeout. Loopback only.
"""
import argparse
import datetime
import json
import math
import os
import re
import resource
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))


class BenchError(Exception):
    pass


def die(msg):
    print("bench: " + msg, file=sys.stderr)
    sys.exit(1)


# ---- results.json ----

def load_results(path):
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        return {}


def put(path, key, value):
    r = load_results(path)
    r[key] = value
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(r, f, indent=1, sort_keys=True)
    os.replace(tmp, path)


# ---- HTTP, loopback only ----

def http(method, url, body=None, key=None, timeout=10, raw=False):
    assert url.startswith("http://127.0.0.1:"), url
    data = None
    headers = {}
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    if key:
        headers["Authorization"] = "Bearer " + key
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            out = r.read()
            status = r.status
    except urllib.error.HTTPError as e:
        out = e.read()
        status = e.code
    if raw:
        return status, out
    try:
        return status, json.loads(out) if out else None
    except ValueError:
        return status, out.decode("utf-8", "replace")


class Sink:
    def __init__(self, port):
        self.base = "http://127.0.0.1:%d" % port

    def get(self, path, timeout=10):
        status, out = http("GET", self.base + path, timeout=timeout, raw=True)
        if status != 200:
            raise BenchError("sink %s answered %d: %r" % (path, status, out[:200]))
        return out

    def count(self):
        return int(self.get("/count").strip())

    def reset(self):
        self.get("/reset")

    def record(self, on):
        self.get("/record/on" if on else "/record/off")

    def dump(self, dest, dump_file):
        n = int(self.get("/dump", timeout=120).strip())
        os.replace(dump_file, dest)
        return n

    def stats(self):
        return json.loads(self.get("/stats"))


def metrics(hl_port):
    status, out = http("GET", "http://127.0.0.1:%d/metrics" % hl_port, raw=True, timeout=30)
    if status != 200:
        raise BenchError("GET /metrics answered %d" % status)
    m = {}
    for line in out.decode().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        name, _, value = line.rpartition(" ")
        try:
            m[name] = float(value)
        except ValueError:
            pass
    return m


def queue_depth(hl_port):
    return int(metrics(hl_port).get("hookline_queue_depth", -1))


def wait_drained(hl_port, timeout):
    """Polls the queue depth until 0; returns the seconds it took."""
    t0 = time.monotonic()
    while True:
        d = queue_depth(hl_port)
        if d == 0:
            return time.monotonic() - t0
        if time.monotonic() - t0 > timeout:
            raise BenchError("the queue did not drain within %.0f s (depth %d)" % (timeout, d))
        time.sleep(0.05)


def wait_count(sink, want, timeout):
    """Waits until the sink has counted `want` POSTs; returns (count, seconds waited)."""
    t0 = time.monotonic()
    while True:
        c = sink.count()
        if c >= want or time.monotonic() - t0 > timeout:
            return c, time.monotonic() - t0
        time.sleep(0.05)


# ---- /proc ----

def proc_status(pid):
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM", "RssAnon", "RssFile", "Threads"):
                out[k] = int(v.split()[0])
    return out


def proc_cpu_s(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / tick


def children_cpu_s():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


# ---- statistics ----

def pct(sorted_v, p):
    if not sorted_v:
        return None
    i = max(0, min(len(sorted_v) - 1, int(math.ceil(p / 100.0 * len(sorted_v))) - 1))
    return sorted_v[i]


def summary_us(values):
    v = sorted(values)
    if not v:
        return {"n": 0}
    return {"n": len(v), "min": v[0], "p50": pct(v, 50), "p95": pct(v, 95), "p99": pct(v, 99),
            "p999": pct(v, 99.9), "max": v[-1], "mean": round(sum(v) / len(v), 1)}


def iso_to_us(s):
    # 2026-11-27T07:41:54.559Z
    try:
        dt = datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ")
    except ValueError:
        return None
    dt = dt.replace(tzinfo=datetime.timezone.utc)
    return int(dt.timestamp() * 1000000)


def read_gen(path):
    """key -> (answer_us, send_us, due_us, status); 2xx only."""
    out = {}
    with open(path) as f:
        for line in f:
            p = line.split()
            if len(p) != 5:
                continue
            status = int(p[4])
            if status // 100 != 2 or p[0] == "-":
                continue
            out[p[0]] = (int(p[1]), int(p[2]), int(p[3]), status)
    return out


def read_sink(path):
    """uid -> [(t_us, path, body_len, eventId, ts_us)]"""
    out = {}
    with open(path) as f:
        for line in f:
            p = line.split()
            if len(p) != 6:
                continue
            out.setdefault(p[4], []).append((int(p[0]), p[1], int(p[2]), p[3], iso_to_us(p[5])))
    return out


# ---- running the load generator ----

def run_load(tools, args, timeout):
    cmd = [os.path.join(tools, "hl-load")] + [str(a) for a in args]
    c0 = children_cpu_s()
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise BenchError("hl-load did not finish within %d s: %s" % (timeout, " ".join(cmd)))
    if r.returncode != 0:
        raise BenchError("hl-load failed (%d): %s" % (r.returncode, r.stderr.strip()))
    if r.stderr.strip():
        print("  hl-load: " + r.stderr.strip(), file=sys.stderr)
    out = json.loads(r.stdout)
    out["cpu_s"] = round(children_cpu_s() - c0, 2)
    return out


def fmt_ms(us):
    return "—" if us is None else "%.2f ms" % (us / 1000.0)


# ---- subcommands ----

def cmd_ports(a):
    socks = []
    ports = []
    for _ in range(a.n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    print(" ".join(map(str, ports)))


def cmd_field(a):
    print(json.loads(sys.stdin.read())[a.name])


def cmd_put(a):
    try:
        v = json.loads(a.value)
    except ValueError:
        v = a.value
    put(a.results, a.key, v)


def cmd_webhooks(a):
    """Creates COUNT webhooks (entities all) whose URL is URL with {i} replaced (and {port} by
    the i-th of PORTS, in turn)."""
    base = "http://127.0.0.1:%d/api/v1/appuid/%s" % (a.hl_port, a.app)
    ports = a.ports.split(",") if a.ports else ["0"]
    for i in range(a.count):
        url = a.url.replace("{i}", str(i)).replace("{port}", ports[i % len(ports)])
        body = {"url": url,
                "entities": ["agent", "context", "contextfile"], "active": True}
        status, out = http("POST", base + "/webhooks", body, a.key)
        if status != 201:
            die("creating webhook %d answered %d: %s" % (i, status, out))
    print("created %d webhook(s) on %s" % (a.count, a.app))


def cmd_probe(a):
    """One change through the API; captures the request hookline sent to the sink."""
    sink = Sink(a.sink_port)
    sink.reset()
    base = "http://127.0.0.1:%d/api/v1/appuid/%s" % (a.hl_port, a.app)
    body = {"agentName": "bench-probe-0", "externalTenantId": "tenant-bench", "live": True,
            "model": "gpt-4o", "temperature": 0.7}
    status, out = http("POST", base + "/agents", body, a.key)
    if status != 201:
        die("probe POST /agents answered %d: %s" % (status, out))
    c, _ = wait_count(sink, 1, 10)
    if c < 1:
        die("the probe change never reached the sink (is the dispatcher running?)")
    raw = sink.get("/last")
    with open(a.out, "wb") as f:
        f.write(raw)
    sink.reset()
    head, _, body_bytes = raw.partition(b"\r\n\r\n")
    print("probe: hookline sent %d header bytes + %d body bytes" % (len(head) + 4,
                                                                   len(body_bytes)))


def cmd_wrk_lua(a):
    """A wrk script that POSTs exactly what hookline sent (same headers, same body)."""
    with open(a.capture, "rb") as f:
        raw = f.read()
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    skip = {"host", "content-length", "accept"}
    out = ['-- generated by bench/bench.py from a captured hookline delivery', 'wrk.method = "POST"']
    eq = "=" * 8
    out.append("wrk.body = [%s[%s]%s]" % (eq, body.decode("utf-8"), eq))
    for line in lines[1:]:
        k, _, v = line.partition(":")
        if k.strip().lower() in skip:
            continue
        out.append('wrk.headers["%s"] = [%s[%s]%s]' % (k.strip(), eq, v.strip(), eq))
    with open(a.out, "w") as f:
        f.write("\n".join(out) + "\n")
    put(a.results, "request_shape", {"head_bytes": len(head) + 4, "body_bytes": len(body)})


def parse_wrk(text):
    m = re.search(r"Requests/sec:\s+([\d.]+)", text)
    if not m:
        raise BenchError("cannot read wrk's output:\n" + text)
    out = {"rps": float(m.group(1))}
    lat = {}
    for p in ("50", "75", "90", "99"):
        mm = re.search(r"^\s+%s%%\s+([\d.]+)(us|ms|s)\s*$" % p, text, re.M)
        if mm:
            v = float(mm.group(1)) * {"us": 1, "ms": 1000, "s": 1000000}[mm.group(2)]
            lat["p" + p] = round(v)
    out["latency_us"] = lat
    m = re.search(r"Socket errors: (.*)", text)
    out["socket_errors"] = m.group(1).strip() if m else None
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    out["non2xx"] = int(m.group(1)) if m else 0
    m = re.search(r"(\d+) requests in", text)
    out["requests"] = int(m.group(1)) if m else None
    return out


def cmd_wrk(a):
    """wrk POSTing the captured request to a receiver: the ceiling."""
    cmd = ["wrk", "-t%d" % a.threads, "-c%d" % a.conns, "-d%ds" % a.duration, "--latency",
           "-s", a.lua, a.url]
    cpu_pid0 = proc_cpu_s(a.pid) if a.pid else None
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=a.duration + 30)
    except subprocess.TimeoutExpired:
        die("wrk did not finish in time")
    if r.returncode != 0:
        die("wrk failed: " + r.stderr)
    res = parse_wrk(r.stdout)
    res.update({"threads": a.threads, "conns": a.conns, "duration_s": a.duration,
                "command": " ".join(cmd[:-3] + ["-s", "delivery.lua", a.url])})
    if a.pid:
        res["receiver_cpu_s"] = round(proc_cpu_s(a.pid) - cpu_pid0, 2)
    if a.sink_port:
        res["sink_count"] = Sink(a.sink_port).count()
    put(a.results, a.name, res)
    print("%s: %.0f requests/s (p50 %s, p99 %s)" % (a.name, res["rps"],
                                                    fmt_ms(res["latency_us"].get("p50")),
                                                    fmt_ms(res["latency_us"].get("p99"))))


def cmd_curlmax(a):
    """libcurl alone (hl-curlmax: one multi thread, keep-alive, the captured request) → the
    sink: the dispatcher's own ceiling, without database, signing or scheduling."""
    cmd = [os.path.join(a.tools, "hl-curlmax"), "-u", a.url, "-f", a.capture, "-c",
           str(a.conns), "-d", str(a.duration), "-m", "reuse"]
    sink0 = proc_cpu_s(a.pid)
    c0 = children_cpu_s()
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=a.duration + 30)
    except subprocess.TimeoutExpired:
        die("hl-curlmax did not finish in time")
    if r.returncode != 0:
        die("hl-curlmax failed (%d): %s" % (r.returncode, r.stderr.strip()))
    m = re.match(r"requests (\d+) seconds ([\d.]+) rate (\d+)/s errors (\d+)", r.stdout.strip())
    if not m:
        die("hl-curlmax: unexpected output %r" % r.stdout)
    res = {"requests": int(m.group(1)), "seconds": float(m.group(2)), "rps": int(m.group(3)),
           "errors": int(m.group(4)), "conns": a.conns,
           "cpu_s": {"curl": round(children_cpu_s() - c0, 2),
                     "sink": round(proc_cpu_s(a.pid) - sink0, 2)}}
    if res["errors"]:
        die("hl-curlmax: %d requests failed" % res["errors"])
    put(a.results, "curl_alone", res)
    print("curl_alone: %d requests/s (%d connections; CPU s: curl %.1f, sink %.1f)" % (
        res["rps"], a.conns, res["cpu_s"]["curl"], res["cpu_s"]["sink"]))


def cmd_floor(a):
    """hl-load at the latency rate straight to the sink: the loopback HTTP floor."""
    sink = Sink(a.sink_port)
    sink.reset()
    g = run_load(a.tools, ["-p", a.sink_port, "-a", "floor", "-k", "none", "-K", "agents",
                           "-c", a.conns, "-d", a.duration, "-r", a.rate, "-x", "floor"],
                 a.duration + 40)
    put(a.results, "floor", g)
    sink.reset()
    print("floor: %d POSTs at %.0f/s to the sink: p50 %s p99 %s" % (
        g["ok"], a.rate, fmt_ms(g["rt_us"]["p50"]), fmt_ms(g["rt_us"]["p99"])))


def cmd_rss(a):
    s = proc_status(a.pid)
    s["at"] = time.time()
    if a.hl_port:
        m = metrics(a.hl_port)
        s["queue_depth"] = int(m.get("hookline_queue_depth", -1))
        s["inflight"] = int(m.get("hookline_inflight", -1))
    put(a.results, a.name, s)
    print("%s: VmRSS %.1f MiB, VmHWM %.1f MiB" % (a.name, s["VmRSS"] / 1024.0,
                                                  s["VmHWM"] / 1024.0))


def cmd_throughput(a):
    """Closed-loop changes for a.duration s; deliveries counted at the sink; then drain."""
    sink = Sink(a.sink_port)
    sink.reset()
    series = []
    stop = threading.Event()

    def sample():
        t0 = time.monotonic()
        while not stop.wait(1.0):
            try:
                series.append({"t": round(time.monotonic() - t0, 2), "sink": sink.count(),
                               "hl_cpu_s": round(proc_cpu_s(a.pid), 2),
                               "depth": queue_depth(a.hl_port) if a.depth_samples else None})
            except (OSError, BenchError):
                pass

    hl_cpu0 = proc_cpu_s(a.pid)
    sink_cpu0 = proc_cpu_s(a.sink_pid)
    c0 = sink.count()
    th = threading.Thread(target=sample, daemon=True)
    t0 = time.monotonic()
    th.start()
    try:
        g = run_load(a.tools, ["-p", a.hl_port, "-a", a.app, "-k", a.key, "-K", a.kind,
                               "-c", a.conns, "-d", a.duration, "-x", a.prefix, "-g", 30],
                     a.duration + 60)
    finally:
        stop.set()
        th.join(5)
    t1 = time.monotonic()
    c1 = sink.count()
    hl_cpu1 = proc_cpu_s(a.pid)
    sink_cpu1 = proc_cpu_s(a.sink_pid)
    drain = wait_drained(a.hl_port, a.drain_timeout)
    t2 = time.monotonic()
    # The last deliveries may still be on the wire when the queue reads 0: give them a moment.
    c2, _ = wait_count(sink, c0 + g["ok"], 5)
    hl_cpu2 = proc_cpu_s(a.pid)
    window = t1 - t0
    rates = [series[i]["sink"] - series[i - 1]["sink"] for i in range(1, len(series))]
    res = {
        "kind": a.kind, "conns": a.conns, "duration_s": a.duration, "gen": g,
        "window_s": round(window, 3), "api_ok": g["ok"], "api_per_s": round(g["ok_per_s"], 1),
        "delivered_window": c1 - c0, "deliveries_per_s": round((c1 - c0) / window, 1),
        "drain_s": round(drain, 3), "delivered_total": c2 - c0,
        "overall_per_s": round((c2 - c0) / (t2 - t0), 1),
        "missing": max(0, g["ok"] - (c2 - c0)), "extra": max(0, (c2 - c0) - g["ok"]),
        "per_second": {"min": min(rates) if rates else None,
                       "median": sorted(rates)[len(rates) // 2] if rates else None,
                       "max": max(rates) if rates else None},
        "cpu_s": {"hookline": round(hl_cpu1 - hl_cpu0, 2),
                  "hookline_drain": round(hl_cpu2 - hl_cpu1, 2),
                  "sink": round(sink_cpu1 - sink_cpu0, 2), "load": g["cpu_s"]},
        "series": series,
    }
    if a.depth_samples:
        depths = [s["depth"] for s in series if s["depth"] is not None]
        res["max_depth"] = max(depths) if depths else None
    put(a.results, a.name, res)
    print("%s: API %.0f changes/s, %.0f deliveries/s (window %.1f s), drain %.2f s, "
          "missing %d, hookline CPU %.0f%%" % (
              a.name, res["api_per_s"], res["deliveries_per_s"], window, drain, res["missing"],
              100.0 * res["cpu_s"]["hookline"] / window))


def cmd_burst(a):
    """The dispatcher alone: queue changes x webhooks deliveries as fast as the API takes them,
    then time the drain (to the sink, and until the queue depth is 0, i.e. all recorded)."""
    sink = Sink(a.sink_port)
    sink.reset()
    want = a.changes * a.fanout
    t0 = time.monotonic()
    hl_cpu0 = proc_cpu_s(a.pid)
    g = run_load(a.tools, ["-p", a.hl_port, "-a", a.app, "-k", a.key, "-K", "events",
                           "-c", a.conns, "-d", 120, "-n", a.changes, "-x", a.prefix, "-g", 30],
                 200)
    t1 = time.monotonic()
    c1 = sink.count()
    hl_cpu1 = proc_cpu_s(a.pid)
    depth1 = queue_depth(a.hl_port)
    want = g["ok"] * a.fanout
    series = []
    deadline = t1 + a.timeout
    c = c1
    while c < want and time.monotonic() < deadline:
        time.sleep(0.05)
        c = sink.count()
        series.append((round(time.monotonic() - t1, 2), c))
    t2 = time.monotonic()
    if c < want:
        raise BenchError("burst: the sink got %d of %d deliveries within %.0f s" % (c, want,
                                                                                  a.timeout))
    drained = wait_drained(a.hl_port, a.timeout)
    t3 = time.monotonic()
    hl_cpu3 = proc_cpu_s(a.pid)
    after = c - c1
    res = {"changes": g["ok"], "fanout": a.fanout, "deliveries": want, "gen": g,
           "load_s": round(t1 - t0, 3), "delivered_during_load": c1,
           "queue_depth_after_load": depth1, "to_sink_s": round(t2 - t1, 3),
           "to_depth0_s": round(t3 - t1, 3),
           "drain_per_s": round(after / (t3 - t1), 1) if t3 > t1 else None,
           "drain_to_sink_per_s": round(after / (t2 - t1), 1) if t2 > t1 else None,
           "overall_per_s": round(want / (t3 - t0), 1),
           "extra": c - want, "record_lag_s": round(drained, 3),
           "cpu_s": {"hookline_load": round(hl_cpu1 - hl_cpu0, 2),
                     "hookline_drain": round(hl_cpu3 - hl_cpu1, 2)}}
    put(a.results, a.name, res)
    print("%s: %d changes x %d webhooks; %d delivered during the load (%.1f s), queue %d; "
          "drained to the sink in %.2f s and to depth 0 in %.2f s: %.0f deliveries/s "
          "(hookline CPU %.0f%% while draining)" % (
              a.name, g["ok"], a.fanout, c1, t1 - t0, depth1, t2 - t1, t3 - t1,
              res["drain_per_s"] or 0, 100.0 * (hl_cpu3 - hl_cpu1) / max(t3 - t1, 0.01)))


def join_latency(gen, sink_recs, fanout):
    """Answer-to-arrival per change; for fan-out, to the last (fanout-th) arrival."""
    lat, lat_send, lat_first, lat_ts, bodies = [], [], [], [], []
    missing = incomplete = extra = negative = 0
    for key, (answer, send, _due, _st) in gen.items():
        arr = sink_recs.get(key)
        if not arr:
            missing += 1
            continue
        paths = {}
        for rec in arr:
            paths.setdefault(rec[1], rec)  # first arrival per webhook path
        if len(arr) > len(paths):
            extra += len(arr) - len(paths)
        if len(paths) < fanout:
            incomplete += 1
            continue
        times = sorted(r[0] for r in paths.values())
        last = times[fanout - 1]
        d = last - answer
        if d < 0:
            negative += 1
        lat.append(d)
        lat_send.append(last - send)
        lat_first.append(times[0] - answer)
        ts = arr[0][4]
        if ts is not None:
            lat_ts.append(last - ts)
        bodies.append(arr[0][2])
    return {
        "changes": len(gen), "matched": len(lat), "missing": missing, "incomplete": incomplete,
        "duplicates": extra, "negative": negative,
        "answer_to_arrival_us": summary_us(lat),
        "send_to_arrival_us": summary_us(lat_send),
        "answer_to_first_us": summary_us(lat_first),
        "event_ts_to_arrival_us": summary_us(lat_ts),
        "body_bytes_mean": round(sum(bodies) / len(bodies), 1) if bodies else None,
    }


def cmd_latency(a):
    """Open-loop changes at a.rate; per change, API answer -> sink arrival (all a.fanout)."""
    sink = Sink(a.sink_port)
    sink.reset()
    warm = None
    if a.warmup > 0:
        # The same load, unmeasured, so that both latency runs start on a warm server (after a
        # restart the first half second is slower: cold page cache, first connections).
        warm = run_load(a.tools, ["-p", a.hl_port, "-a", a.app, "-k", a.key, "-K", a.kind,
                                  "-c", a.conns, "-d", a.warmup, "-r", a.rate,
                                  "-x", a.prefix + "w", "-g", 30], a.warmup + 60)
        wait_count(sink, warm["ok"] * a.fanout, a.wait)
        sink.reset()
    sink.record(True)
    gen_file = os.path.join(a.run, a.name + ".gen.txt")
    sink_file = os.path.join(a.run, a.name + ".sink.txt")
    hl_cpu0 = proc_cpu_s(a.pid)
    depth0 = queue_depth(a.hl_port)
    rss0 = proc_status(a.pid)
    g = run_load(a.tools, ["-p", a.hl_port, "-a", a.app, "-k", a.key, "-K", a.kind,
                           "-c", a.conns, "-d", a.duration, "-r", a.rate, "-x", a.prefix,
                           "-o", gen_file, "-g", 30], a.duration + 60)
    want = g["ok"] * a.fanout
    got, waited = wait_count(sink, want, a.wait)
    sink.record(False)
    hl_cpu1 = proc_cpu_s(a.pid)
    n = sink.dump(sink_file, a.dump_file)
    st = sink.stats()
    res = join_latency(read_gen(gen_file), read_sink(sink_file), a.fanout)
    res.update({"warmup_s": a.warmup, "warmup_gen": warm,
                "rate": a.rate, "duration_s": a.duration, "conns": a.conns, "kind": a.kind,
                "fanout": a.fanout, "gen": g, "sink_count": got, "sink_records": n,
                "sink_dropped": st.get("dropped"), "expected_deliveries": want,
                "wait_after_s": round(waited, 2),
                "hookline_cpu_share": round((hl_cpu1 - hl_cpu0) / max(g["duration_s"], 0.1), 3),
                "queue_depth_before": depth0, "queue_depth_after": queue_depth(a.hl_port),
                "rss_before": rss0, "rss_after": proc_status(a.pid)})
    put(a.results, a.name, res)
    L = res["answer_to_arrival_us"]
    print("%s: %d changes at %.0f/s, answer->arrival%s p50 %s p95 %s p99 %s max %s; "
          "API p50 %s p99 %s; missing %d incomplete %d" % (
              a.name, g["ok"], a.rate, " (all %d)" % a.fanout if a.fanout > 1 else "",
              fmt_ms(L.get("p50")), fmt_ms(L.get("p95")), fmt_ms(L.get("p99")),
              fmt_ms(L.get("max")), fmt_ms(g["rt_us"]["p50"]), fmt_ms(g["rt_us"]["p99"]),
              res["missing"], res["incomplete"]))
    if got < want:
        print("  warning: the sink got %d of %d deliveries within %.0f s" % (got, want, a.wait),
              file=sys.stderr)


BACKLOG_DATA = {"uid": "agent-backlog-template", "externalTenantId": "tenant-dead",
                "agentName": "backlog", "live": True, "model": "gpt-4o", "temperature": 0.7}


def request_end(buf):
    """The length of the first whole HTTP request in buf (head and Content-Length body), or 0."""
    head_end = buf.find(b"\r\n\r\n")
    if head_end < 0:
        return 0
    length = 0
    for line in buf[:head_end].split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip() or 0)
    end = head_end + 4 + length
    return end if len(buf) >= end else 0


def cmd_blackhole(a):
    """TCP blackholes: listens on each port, accepts every connection, reads and drops what
    comes and never answers, until SIGTERM (or --max-s). What a firewalled host that completes
    the handshake looks like to a sender: every attempt hangs until its timeout. With
    --answer-after S, a slow receiver instead: each whole request is answered 200 after S
    seconds (keep-alive)."""
    import selectors
    import signal
    ok = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
    due = {}  # connection -> [monotonic times its requests are answered at]
    bufs = {}
    sel = selectors.DefaultSelector()
    for port in a.ports.split(","):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", int(port)))
        s.listen(4096)
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ, True)
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    deadline = time.monotonic() + a.max_s
    held = 0
    while not stop and time.monotonic() < deadline:
        now = time.monotonic()
        for c, times in list(due.items()):
            while times and times[0] <= now:
                times.pop(0)
                try:
                    c.send(ok)
                except OSError:
                    break
        for key, _ in sel.select(0.02 if a.answer_after > 0 else 0.2):
            if key.data:
                try:
                    c, _ = key.fileobj.accept()
                except OSError:
                    continue
                c.setblocking(False)
                sel.register(c, selectors.EVENT_READ, False)
                held += 1
                continue
            c = key.fileobj
            try:
                data = c.recv(65536)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            if not data:
                sel.unregister(c)
                c.close()
                due.pop(c, None)
                bufs.pop(c, None)
                continue
            if a.answer_after > 0:
                buf = bufs.get(c, b"") + data
                end = request_end(buf)
                while end:
                    due.setdefault(c, []).append(time.monotonic() + a.answer_after)
                    buf = buf[end:]
                    end = request_end(buf)
                bufs[c] = buf
    print("blackhole: %d connections accepted" % held)


def cmd_noisy_load(a):
    """The noisy app's backlog: a.changes POST /events to an app whose webhooks all point at
    blackholes (a.changes x webhooks deliveries), then waits until its attempts hang in flight
    and records how things stand."""
    g = run_load(a.tools, ["-p", a.hl_port, "-a", a.app, "-k", a.key, "-K", "events",
                           "-c", 8, "-d", 120, "-n", a.changes, "-x", "noisy", "-g", 30], 200)
    t0 = time.monotonic()
    m = metrics(a.hl_port)
    while m.get("hookline_inflight", 0) < a.min_inflight and time.monotonic() - t0 < 60:
        time.sleep(0.1)
        m = metrics(a.hl_port)
    if m.get("hookline_inflight", 0) < a.min_inflight:
        raise BenchError("noisy: only %d attempts in flight after 60 s (want %d)" % (
            m.get("hookline_inflight", 0), a.min_inflight))
    res = {"changes": g["ok"], "webhooks": a.webhooks, "api_per_s": round(g["ok_per_s"], 1),
           "inflight": int(m["hookline_inflight"]),
           "queue_depth": int(m.get("hookline_queue_depth", -1)), "timeout": a.timeout,
           "max_inflight": a.max_inflight}
    put(a.results, "noisy", res)
    print("noisy: %d changes x %d blackholed webhooks; %d attempts hanging, %d deliveries "
          "pending" % (g["ok"], a.webhooks, res["inflight"], res["queue_depth"]))


def cmd_neighbours(a):
    """How the bad neighbours stand after the measured run: attempts in flight, deliveries
    pending, webhooks whose breaker is open."""
    m = metrics(a.hl_port)
    res = {"closed": a.closed, "slow": a.slow, "answer_after_s": a.answer_after,
           "inflight": int(m.get("hookline_inflight", -1)),
           "queue_depth": int(m.get("hookline_queue_depth", -1)),
           "breaker_open": int(m.get('hookline_webhooks{state="breaker_open"}', -1))}
    put(a.results, "neighbours", res)
    print("neighbours: %d webhooks on a closed port, %d answering after %.1f s; %d attempts in "
          "flight, %d deliveries pending, %d breakers open" % (
              a.closed, a.slow, a.answer_after, res["inflight"], res["queue_depth"],
              res["breaker_open"]))


def cmd_publish_one(a):
    """POST /events once; prints the eventId."""
    base = "http://127.0.0.1:%d/api/v1/appuid/%s" % (a.hl_port, a.app)
    body = {"event": "agent.updated", "data": BACKLOG_DATA}
    status, out = http("POST", base + "/events", body, a.key)
    if status // 100 != 2:
        die("POST /events answered %d: %s" % (status, out))
    print(out["eventId"])


def cmd_backlog_sql(a):
    """SQL that adds a.events events x every webhook of the dead app as pending deliveries.

    Each copy of the template event gets its own eventId (also inside its payload); each
    delivery looks like one whose first attempt failed with "connection refused" and whose next
    attempt is spread over one hour starting a.lead_s from now, so that the measurement, started
    at that moment, sees the dispatcher retrying a steady trickle of them (~pending/3600 per
    second) and no pile of retries that fell due while the backlog was being built. Prints the
    epoch ms at which the first retries fall due."""
    now_ms = int(time.time() * 1000)
    first_due = now_ms + int(a.lead_s * 1000)
    # hookline stores payloads packed; the copies are written as plain JSON, which it reads as
    # it is (only the dead endpoint ever sees them)
    iso = datetime.datetime.fromtimestamp(now_ms / 1000.0 - 600, datetime.timezone.utc)
    iso = iso.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % ((now_ms - 600000) % 1000)
    data = json.dumps(BACKLOG_DATA, separators=(",", ":"))
    sql = """
PRAGMA journal_mode = WAL;
PRAGMA synchronous = OFF;
PRAGMA foreign_keys = OFF;
BEGIN;
CREATE TEMP TABLE tpl AS SELECT * FROM events WHERE uid = '{evt}';
CREATE TEMP TABLE seq(i INTEGER PRIMARY KEY);
WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < {n})
INSERT INTO seq SELECT i FROM s;
INSERT INTO events(uid, app_id, type, tenant, resource_uid, created_at, payload)
  SELECT 'evt_bl' || printf('%010d', seq.i), tpl.app_id, tpl.type, tpl.tenant,
         tpl.resource_uid, {now} - 600000,
         CAST('{{"eventId":"evt_bl' || printf('%010d', seq.i) || '","event":"agent.updated",'
              || '"timestamp":"{iso}","appUid":"' || apps.uid || '","version":1,"data":'
              || '{data}}}' AS BLOB)
  FROM tpl JOIN apps ON apps.id = tpl.app_id, seq;
INSERT INTO deliveries(event_id, webhook_id, status, attempts, next_attempt_at, lease_until,
                       last_status, last_error, created_at)
  SELECT e.id, w.id, 0, 1, {first_due} + ((e.id * 7919 + w.id * 104729) % 3600000), 0, 0,
         'connection refused: Failed to connect to 127.0.0.1 port {port}', {now} - 600000
  FROM events e JOIN webhooks w ON w.app_id = e.app_id AND w.deleted_at = 0
  WHERE e.uid LIKE 'evt_bl%';
INSERT INTO attempts(delivery_id, started_at, duration_us, status_code, error, response)
  SELECT d.id, {now} - 600000, 150, 0, d.last_error, NULL
  FROM deliveries d JOIN events e ON e.id = d.event_id WHERE e.uid LIKE 'evt_bl%';
COMMIT;
PRAGMA wal_checkpoint(TRUNCATE);
SELECT count(*) FROM deliveries WHERE status = 0;
""".format(evt=a.event_id, n=a.events, now=now_ms, first_due=first_due, port=a.dead_port,
           iso=iso, data=data.replace("'", "''"))
    with open(a.out, "w") as f:
        f.write(sql)
    print(first_due)


def cmd_wait_until(a):
    """Sleeps until the epoch time a.ms (at most a.max_s); records how far off the start was."""
    delay = a.ms / 1000.0 - time.time()
    if delay > a.max_s:
        die("wait-until: %.0f s is longer than %.0f s" % (delay, a.max_s))
    if delay > 0:
        time.sleep(delay)
    late = time.time() - a.ms / 1000.0
    r = load_results(a.results).get(a.key, {})
    r["start_after_first_due_s"] = round(late, 2)
    put(a.results, a.key, r)
    print("measuring from %.1f s after the first retries fell due" % late)


def cmd_fsync(a):
    """fdatasync rate of the disk holding the database: the floor of one commit per change."""
    path = os.path.join(a.dir, "fsync.probe")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    n = 0
    buf = b"x" * 4096
    t0 = time.monotonic()
    try:
        while time.monotonic() - t0 < a.seconds:
            os.pwrite(fd, buf, (n % 64) * 4096)
            os.fdatasync(fd)
            n += 1
    finally:
        os.close(fd)
        os.unlink(path)
    rate = n / (time.monotonic() - t0)
    put(a.results, "fsync_per_s", round(rate))
    print("disk: %.0f fdatasync/s" % rate)


def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True,
                              timeout=10).stdout.strip()
    except subprocess.TimeoutExpired:
        return ""


def cmd_machine(a):
    model = ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem_kib = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal"):
                mem_kib = int(line.split()[1])
    dev = sh("df --output=source %s | tail -1" % a.dir)
    base = os.path.basename(dev)
    disk = " ".join(sh("lsblk -dno NAME,SIZE,MODEL /dev/%s 2>/dev/null" % base).split()) or dev
    rota = sh("cat /sys/block/%s/queue/rotational 2>/dev/null" % base)
    if rota in ("0", "1"):
        disk += ", rotational=" + rota
    fs = sh("df --output=fstype %s | tail -1" % a.dir)
    info = {"nproc": os.cpu_count(), "cpu": model, "mem_gib": round(mem_kib / 1048576.0, 1),
            "kernel": os.uname().release, "disk": "%s (%s)" % (disk, fs),
            "os": sh(". /etc/os-release && echo $PRETTY_NAME"),
            "cc": sh("cc --version | head -1"), "wrk": sh("dpkg-query -W -f='${Version}' wrk"),
            "nginx": sh("dpkg-query -W -f='${Version}' nginx-light"),
            "libcurl": sh("dpkg-query -W -f='${Version}' libcurl4"),
            "libmicrohttpd": sh("dpkg-query -W -f='${Version}' libmicrohttpd12"),
            "sqlite": sh("dpkg-query -W -f='${Version}' libsqlite3-0")}
    put(a.results, "machine", info)


def cmd_loadavg(a):
    with open("/proc/loadavg") as f:
        v = f.read().split()[:3]
    put(a.results, a.name, [float(x) for x in v])
    print("load average: " + " ".join(v))


# ---- BENCHMARKS.md ----

MANUAL_RE = re.compile(r"<!-- manual:begin (\S+) -->\n(.*?)<!-- manual:end \1 -->", re.S)

DEFAULT_MANUAL = {
    "changes": """## What changed and what each change bought

_Filled in by hand: one line per change, with the figure before and after, from runs of
`make bench` (this section is kept when the file is regenerated)._

| Change | Commit | Figure | Before | After |
|---|---|---|---|---|
""",
    "notes": """## Notes

_Hand-written notes (profiles, what now limits throughput) go here; kept on regeneration._
""",
}


def manual_blocks(path):
    try:
        with open(path) as f:
            text = f.read()
    except FileNotFoundError:
        return {}, []
    blocks = {}
    order = []
    for m in MANUAL_RE.finditer(text):
        blocks[m.group(1)] = m.group(2)
        order.append(m.group(1))
    return blocks, order


def block(name, kept):
    body = kept.get(name, DEFAULT_MANUAL.get(name, ""))
    if body and not body.endswith("\n"):
        body += "\n"
    return "<!-- manual:begin %s -->\n%s<!-- manual:end %s -->\n" % (name, body, name)


def yes(ok):
    return "—" if ok is None else ("**yes**" if ok else "**no**")


def ms(us):
    return "—" if us is None else ("%.2f ms" % (us / 1000.0))


def mib(kib):
    return "—" if kib is None else "%.1f MiB" % (kib / 1024.0)


def num(v, fmt=None):
    if v is None:
        return "—"
    return "{:,.0f}".format(v) if fmt is None else fmt % v


BACKENDS = {"sqlite": "SQLite", "postgres": "PostgreSQL"}


def retention_rows(ret, row):
    """The rows of bench/retention.py's figures (one run: SQLite or PostgreSQL)."""
    if "skipped" in ret:
        row("Retention on PostgreSQL: not run (%s)" % ret["skipped"], "—", "—", "—",
            "—", "—")
        return
    base, run = ret["baseline"], ret["pruning"]
    st = base["storage"]
    db = BACKENDS.get(ret["backend"], ret["backend"])
    row("Storage (%s): bytes on disk per change, everything kept (POST /events to one webhook, "
        "%s changes; %s)" % (db, "{:,}".format(st["changes"]), st["method"]),
        "%s B" % num(st["per_change"], "%.0f"), "—", "—",
        "bounded by the retention; measured and reported", "—")
    pl = run["plateau"]
    row("Retention (%s) %d s under %.0f changes/s for %.0f s: %s, peak in the first / "
        "second half" % (db, ret["retention_s"], ret["rate"], ret["run_s"],
                         "database + WAL" if ret["backend"] == "sqlite" else
                         "pg_database_size"),
        "%s / %s" % (mib(pl["first_half_peak"] / 1024.0 if pl["first_half_peak"] else None),
                     mib(pl["second_half_peak"] / 1024.0 if pl["second_half_peak"] else None)),
        "—", num(pl["ratio"], "%.3f ×"), "second half ≤ 1.15 × first half",
        yes(ret["plateau_ok"]) if ret["plateau_ok"] is not None else "not judged (run too "
        "short to plateau)")
    w = run["api_pruning"]["rt_us"]
    b = base["api"]["rt_us"]
    bp = run["api_before_pruning"]["rt_us"]
    row("… API response time p50 / p99 while the pruner works (from %d s on) vs the same load "
        "without pruning (`--retention 0`, %.0f s; in brackets: the same run's first %d s, "
        "nothing old yet)" % (ret["retention_s"] + ret["sample_s"], ret["base_s"],
                              ret["retention_s"]),
        "%s / %s" % (ms(w.get("p50")), ms(w.get("p99"))),
        "%s / %s (%s / %s)" % (ms(b.get("p50")), ms(b.get("p99")), ms(bp.get("p50")),
                               ms(bp.get("p99"))),
        "p99 %s" % num(w["p99"] / b["p99"] if w.get("p99") and b.get("p99") else None,
                       "%.2f ×"),
        "p99 ≤ 1.5 × + 1 ms of the run without pruning", yes(ret["p99_ok"]))
    ow = run["owed"]
    row("… nothing owed lost: old events to a dead endpoint still listed / their deliveries "
        "still pending; changes missing at the sink",
        "%d / %d of %d; missing %d" % (ow["events_listed"], ow["deliveries_pending"],
                                      ow["expected"], ret["missing"]),
        "—", "—", "all kept, none missing", yes(ret["owed_ok"] and ret["missing"] == 0))


def retention_details(ret):
    if "skipped" in ret:
        return []
    base, run = ret["baseline"], ret["pruning"]
    st = base["storage"]
    parts = ", ".join("%s %s" % (k, num(v, "%.0f")) for k, v in st["parts_per_change"].items())
    series = ", ".join("%.0f s %.1f" % (x["t"], x["bytes"] / 1048576.0)
                       for x in run["samples"][::max(1, len(run["samples"]) // 18)])
    pr = run["pruned"]
    return [
        "- **Storage per change** (%s, %s changes kept): %s B in all; by table and index (B): "
        "%s." % (ret["backend"], "{:,}".format(st["changes"]), num(st["per_change"], "%.0f"),
                 parts),
        "- **Retention run** (%s): %s changes accepted at %.0f/s (API p99 %s; %s missing); "
        "database size over time (s, MiB): %s; pruned %s events, %s deliveries, %s attempts; "
        "queue depth after the drain %s (the owed deliveries)." % (
            ret["backend"], "{:,}".format(run["gen"]["ok"]), ret["rate"], ms(run["gen"]["rt_us"]["p99"]),
            run["missing"], series, "{:,}".format(pr["events"]), "{:,}".format(pr["deliveries"]),
            "{:,}".format(pr["attempts"]), run["queue_depth_after"]),
    ]


def cmd_render(a):
    r = load_results(a.results)
    kept, order = manual_blocks(a.out)
    meta = r.get("meta", {})
    mach = r.get("machine", {})
    ceil = r.get("ceiling_sink", {})
    ceil_rps = ceil.get("rps")
    ngx = r.get("ceiling_nginx")
    floor = r.get("floor", {})
    lat = r.get("latency", {})
    fan = r.get("fanout", {})
    bl = r.get("backlog_latency", {})
    blinfo = r.get("backlog", {})
    shape = r.get("request_shape", {})
    rows = []

    def row(figure, hl, base, ratio, target, met):
        rows.append("| %s | %s | %s | %s | %s | %s |" % (figure, hl, base, ratio, target, met))

    row("Receiver ceiling: wrk → hl-sink, POST of a captured delivery (%s B head + %s B body), "
        "%s threads, %s connections" % (shape.get("head_bytes", "?"), shape.get("body_bytes", "?"),
                                        ceil.get("threads", "?"), ceil.get("conns", "?")),
        "—", "%s req/s" % num(ceil_rps), "—", "DESIGN: ~100,000 req/s (wrk → nginx)", "—")
    if ngx:
        row("Reference: wrk → nginx `return 200`, same request", "—",
            "%s req/s" % num(ngx.get("rps")), "—", "~100,000 req/s", "—")
    cur = r.get("curl_alone")
    cur_rps = cur.get("rps") if cur else None
    if cur:
        row("Baseline for the dispatcher: libcurl alone (`hl-curlmax`: one multi thread, %d "
            "keep-alive connections, the same request, no database) → hl-sink" % cur["conns"],
            "—", "%s req/s (%s × ceiling)" % (num(cur_rps), num(cur_rps / ceil_rps, "%.2f")
                                              if ceil_rps else "?"),
            "—", "DESIGN: 30,000–45,000 POST/s (64 handles)", "—")
    for name, label in (("throughput_agents", "POST /agents"), ("throughput_events",
                                                                 "POST /events")):
        t = r.get(name)
        if not t:
            continue
        ratio = t["deliveries_per_s"] / ceil_rps if ceil_rps else None
        row("Throughput via %s (%d connections, %.0f s closed loop): sustained deliveries/s at "
            "the sink" % (label, t["conns"], t["window_s"]),
            "%s /s" % num(t["deliveries_per_s"]), "%s req/s (ceiling)" % num(ceil_rps),
            num(ratio, "%.3f ×"), "≥ 0.5 × ceiling", yes(ratio >= 0.5 if ratio else None))
        row("… API changes accepted/s via %s; drain after the load; missing deliveries" % label,
            "%s /s; drain %.2f s; missing %d" % (num(t["api_per_s"]), t["drain_s"],
                                                t["missing"]),
            "—", "—", "—", "—")
    bu = r.get("burst")
    if bu:
        ratio = bu["drain_per_s"] / ceil_rps if ceil_rps and bu.get("drain_per_s") else None
        row("Dispatcher alone: draining a queue of %s deliveries (%s changes × %d webhooks on "
            "the sink, queued through POST /events), until the queue depth is 0" % (
                "{:,}".format(bu["queue_depth_after_load"]), "{:,}".format(bu["changes"]),
                bu["fanout"]),
            "%s /s" % num(bu["drain_per_s"]), "%s req/s (ceiling)" % num(ceil_rps),
            num(ratio, "%.3f ×"), "≥ 0.5 × ceiling", yes(ratio >= 0.5 if ratio else None))
        if cur_rps and bu.get("drain_per_s"):
            row("… the same drain beside libcurl alone (the baseline row above)",
                "%s /s" % num(bu["drain_per_s"]), "%s req/s" % num(cur_rps),
                num(bu["drain_per_s"] / cur_rps, "%.2f ×"), "—", "—")
    if lat:
        L = lat["answer_to_arrival_us"]
        F = floor.get("rt_us", {})
        ok50 = L.get("p50") is not None and L["p50"] <= 2000
        ok99 = L.get("p99") is not None and L["p99"] <= 20000
        row("Latency at %.0f changes/s (POST /agents, open loop, %.0f s): API answer → sink "
            "arrival p50 / p95 / p99 / max" % (lat["rate"], lat["duration_s"]),
            "%s / %s / %s / %s" % (ms(L.get("p50")), ms(L.get("p95")), ms(L.get("p99")),
                                   ms(L.get("max"))),
            "loopback POST → sink at the same rate: %s / %s / %s / %s" % (
                ms(F.get("p50")), ms(F.get("p95")), ms(F.get("p99")), ms(F.get("max"))),
            "—", "p50 ≤ 2 ms, p99 ≤ 20 ms", yes(ok50 and ok99))
        G = lat["gen"]
        row("… API response time at %.0f changes/s p50 / p95 / p99 / max (from send; from the "
            "scheduled time in brackets)" % lat["rate"],
            "%s / %s / %s / %s (%s / %s / %s / %s)" % (
                ms(G["rt_us"]["p50"]), ms(G["rt_us"]["p95"]), ms(G["rt_us"]["p99"]),
                ms(G["rt_us"]["max"]), ms(G["rt_corrected_us"]["p50"]),
                ms(G["rt_corrected_us"]["p95"]), ms(G["rt_corrected_us"]["p99"]),
                ms(G["rt_corrected_us"]["max"])),
            "same, POST → sink: %s / %s / %s / %s" % (ms(F.get("p50")), ms(F.get("p95")),
                                                      ms(F.get("p99")), ms(F.get("max"))),
            "—", "—", "—")
        row("… changes answered / matched at the sink / missing / arrived before the answer",
            "%d / %d / %d / %d" % (G["ok"], lat["matched"], lat["missing"], lat["negative"]),
            "—", "—", "all delivered", yes(lat["missing"] == 0 and lat["incomplete"] == 0))
    if fan:
        Fl = fan["answer_to_arrival_us"]
        L = lat.get("answer_to_arrival_us", {})
        row("Fan-out: one change to %d webhooks, %d changes at %.0f/s: answer → %dth arrival "
            "p50 / p99 / max" % (fan["fanout"], fan["changes"], fan["rate"], fan["fanout"]),
            "%s / %s / %s" % (ms(Fl.get("p50")), ms(Fl.get("p99")), ms(Fl.get("max"))),
            "one webhook (latency run): %s / %s" % (ms(L.get("p50")), ms(L.get("p99"))),
            "—", "—", "—")
    if bl:
        B = bl["answer_to_arrival_us"]
        L = lat.get("answer_to_arrival_us", {})
        met = None
        if B.get("p99") is not None and L.get("p99") is not None:
            # "Does not slow": p50 and p99 within 1.5x (+1 ms of slack for noise) of the run
            # without backlog.
            met = B["p50"] <= 1.5 * L["p50"] + 1000 and B["p99"] <= 1.5 * L["p99"] + 1000
        row("Backlog: %s pending deliveries to a dead endpoint; new changes at %.0f/s for "
            "%.0f s: answer → arrival p50 / p95 / p99 / max" % (
                "{:,}".format(blinfo.get("pending_at_start", 0)), bl["rate"], bl["duration_s"]),
            "%s / %s / %s / %s" % (ms(B.get("p50")), ms(B.get("p95")), ms(B.get("p99")),
                                   ms(B.get("max"))),
            "no backlog (latency run): %s / %s / %s / %s" % (
                ms(L.get("p50")), ms(L.get("p95")), ms(L.get("p99")), ms(L.get("max"))),
            "p99 %s" % num(B["p99"] / L["p99"] if B.get("p99") and L.get("p99") else None,
                           "%.2f ×"),
            "the backlog does not slow new events (here: p50 and p99 within 1.5× + 1 ms of "
            "the run without backlog)", yes(met))
        rb = bl.get("rss_after", {})
        rss_ok = rb.get("VmRSS") is not None and rb["VmRSS"] <= 64 * 1024
        hwm_ok = rb.get("VmHWM") is not None and rb["VmHWM"] <= 64 * 1024
        row("Backlog: hookline RSS with %s pending (VmRSS after the run; VmHWM since the "
            "restart)" % "{:,}".format(blinfo.get("pending_at_start", 0)),
            "%s (HWM %s)" % (mib(rb.get("VmRSS")), mib(rb.get("VmHWM"))), "—", "—",
            "≤ 64 MiB", yes(rss_ok and hwm_ok))
    rets = [r[k] for k in ("retention", "retention_pg") if r.get(k)]
    for ret in rets:
        retention_rows(ret, row)
    noisy, nb, nl = r.get("noisy"), r.get("noisy_baseline"), r.get("noisy_latency")
    if noisy and nb and nl:
        N, B = nl["answer_to_arrival_us"], nb["answer_to_arrival_us"]
        met = N.get("p99") is not None and N["p99"] < 50000 and nl["missing"] == 0
        row("Noisy tenant: app A has %d webhooks on TCP blackholes (accept, never answer; "
            "`--timeout` %s) and %s deliveries pending, %d of its attempts hanging; app B's "
            "changes at %.0f/s for %.0f s: answer → arrival p50 / p95 / p99 / max" % (
                noisy["webhooks"], noisy["timeout"], "{:,}".format(noisy["queue_depth"]),
                noisy["inflight"], nl["rate"], nl["duration_s"]),
            "%s / %s / %s / %s" % (ms(N.get("p50")), ms(N.get("p95")), ms(N.get("p99")),
                                   ms(N.get("max"))),
            "app B alone (same run, before A's load): %s / %s / %s / %s" % (
                ms(B.get("p50")), ms(B.get("p95")), ms(B.get("p99")), ms(B.get("max"))),
            "p99 %s" % num(N["p99"] / B["p99"] if N.get("p99") and B.get("p99") else None,
                           "%.2f ×"),
            "app B's p99 < 50 ms, none missing", yes(met))
    nbr, nbb, nbl = r.get("neighbours"), r.get("neighbour_baseline"), r.get("neighbour_latency")
    if nbr and nbb and nbl:
        N, B = nbl["answer_to_arrival_us"], nbb["answer_to_arrival_us"]
        planned = nbl["rate"] * nbl["duration_s"]
        # The load is open-loop from 8 connections: when the API slows down, fewer changes are
        # made than planned, and the latency is then measured at a lower rate than the target's.
        sustained = (nbl["changes"] >= 0.95 * planned and
                     nbl.get("gen", {}).get("ok_per_s", 0) >= 0.95 * nbl["rate"])
        met = (N.get("p99") is not None and B.get("p99") is not None and
               N["p99"] <= 1.5 * B["p99"] + 1000 and nbl["missing"] == 0 and sustained)

        def api(run):
            g = run.get("gen", {}).get("rt_us", {})
            return "%s / %s" % (ms(g.get("p50")), ms(g.get("p99")))
        row("Noisy neighbours: one app, a healthy webhook beside %d webhooks on a closed port and "
            "%d answering after %.1f s (same events; %d breakers open, %d attempts in flight at "
            "the end); the healthy webhook's changes planned at %.0f/s for %.0f s (%s of %s "
            "made; the API's p50 / p99 from each request's send %s beside, %s alone): answer → "
            "arrival "
            "p50 / p95 / p99 / max" % (
                nbr["closed"], nbr["slow"], nbr["answer_after_s"], nbr["breaker_open"],
                nbr["inflight"], nbl["rate"], nbl["duration_s"],
                "{:,}".format(nbl["changes"]), "{:,}".format(int(planned)), api(nbl), api(nbb)),
            "%s / %s / %s / %s" % (ms(N.get("p50")), ms(N.get("p95")), ms(N.get("p99")),
                                   ms(N.get("max"))),
            "the healthy webhook alone (same run, before the others): %s / %s / %s / %s" % (
                ms(B.get("p50")), ms(B.get("p95")), ms(B.get("p99")), ms(B.get("max"))),
            "p99 %s" % num(N["p99"] / B["p99"] if N.get("p99") and B.get("p99") else None,
                           "%.2f ×"),
            "p99 ≤ 1.5 × alone + 1 ms at the planned rate (≥ 95 % of it: changes made, and per "
            "second), none "
            "missing", yes(met))
    idle = r.get("rss_idle", {})
    peak = r.get("rss_peak", {})
    row("Memory: RSS idle after start", mib(idle.get("VmRSS")), "—", "—", "—", "—")
    row("Memory: peak RSS (VmHWM after the latency, fan-out, throughput and drain runs)",
        mib(peak.get("VmHWM")), "—", "—", "—", "—")

    quick = meta.get("mode") == "quick"
    lines = []
    lines.append("# hookline benchmarks\n")
    lines.append("_Generated by `bench/run.sh%s` (`make bench`) on %s at commit `%s`%s. "
                 "Everything outside the `manual` blocks is rewritten by each run._\n" % (
                     " --quick" if quick else "", meta.get("date", "?"), meta.get("commit", "?"),
                     " (with uncommitted changes in src/)" if meta.get("dirty") else ""))
    if quick:
        lines.append("> **Quick mode**: every phase about 5 s and a 100,000-delivery backlog. "
                     "Development numbers only; the figures that count come from the full "
                     "run.\n")
    la = r.get("loadavg_before")
    if la and la[0] > 0.5 * max(1, mach.get("nproc", 1)):
        lines.append("> **The machine was busy** when this run started (load average %s on %s "
                     "cores): other work shared the CPU, so the absolute numbers are low and "
                     "noisy; the ratios to the same-run baselines are what to read.\n" % (
                         " ".join("%.2f" % x for x in la), mach.get("nproc", "?")))
    lines.append("## Results\n")
    lines.append("| Figure | hookline | Baseline / ceiling (same run) | Ratio | Target (DESIGN.md) "
                 "| Met? |")
    lines.append("|---|---|---|---|---|---|")
    lines.extend(rows)
    lines.append("")

    sc = [r[k] for k in ("scale", "scale_pg") if k in r]
    if sc:
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        import scale  # noqa: E402 (bench/scale.py: the same table it prints)
        lines.append("## Scale: every list and count of the API\n")
        lines.append("Median of 3 requests (one keep-alive connection, after a warm-up) with %s "
                     "events, deliveries and attempts and %s agents and contexts in the "
                     "database; a filter that matches nothing marked (no match). "
                     "`bench/scale.py`.\n" % ("{:,}".format(sc[0]["events"]),
                                               "{:,}".format(sc[0]["resources"])))
        lines.append(scale.table(sc))
    lines.append("## Details\n")
    for name, label in (("throughput_agents", "POST /agents"), ("throughput_events",
                                                                 "POST /events")):
        t = r.get(name)
        if not t:
            continue
        c = t["cpu_s"]
        g = t["gen"]
        lines.append("- **Throughput via %s**: %d changes accepted in %.1f s (%s/s; API p50 %s, "
                     "p99 %s); the sink counted %d during the load (per second: min %s, median "
                     "%s, max %s) and %d in all after the drain (%.2f s; %s overall/s). "
                     "Missing %d, extra %d. CPU seconds during the load: hookline %.1f "
                     "(%.0f%% of one core), load generator %.1f, sink %.1f; hookline during the "
                     "drain %.1f.%s" % (
                         label, t["api_ok"], t["window_s"], num(t["api_per_s"]),
                         ms(g["rt_us"]["p50"]), ms(g["rt_us"]["p99"]), t["delivered_window"],
                         num(t["per_second"]["min"]), num(t["per_second"]["median"]),
                         num(t["per_second"]["max"]), t["delivered_total"], t["drain_s"],
                         num(t["overall_per_s"]), t["missing"], t["extra"], c["hookline"],
                         100.0 * c["hookline"] / t["window_s"], c["load"], c["sink"],
                         c["hookline_drain"],
                         (" Largest queue depth seen: %s." % t["max_depth"])
                         if t.get("max_depth") is not None else ""))
    if bu:
        lines.append("- **Dispatcher drain**: %s changes accepted in %.1f s (%s/s), %s of their "
                     "%s deliveries made meanwhile; the rest reached the sink %.2f s after the "
                     "load ended (%s/s) and the queue read 0 after %.2f s; hookline CPU %.1f s "
                     "during the load, %.1f s during the drain (%.0f%% of one core)." % (
                         "{:,}".format(bu["changes"]), bu["load_s"],
                         num(bu["gen"]["ok_per_s"]), "{:,}".format(bu["delivered_during_load"]),
                         "{:,}".format(bu["deliveries"]), bu["to_sink_s"],
                         num(bu["drain_to_sink_per_s"]), bu["to_depth0_s"],
                         bu["cpu_s"]["hookline_load"], bu["cpu_s"]["hookline_drain"],
                         100.0 * bu["cpu_s"]["hookline_drain"] / max(bu["to_depth0_s"], 0.01)))
    if lat:
        lines.append("- **Latency run**: request to arrival (from the client sending) p50 %s, p99 "
                     "%s; the event's own `timestamp` (ms resolution) to arrival p50 %s, p99 %s; "
                     "answer to arrival below zero for %d of %d changes (the receiver had the "
                     "event before the client had its answer); %d sends were more than 1 ms late "
                     "(largest lag %s); hookline used %.0f%% of one core; delivery body %s B." % (
                         ms(lat["send_to_arrival_us"].get("p50")),
                         ms(lat["send_to_arrival_us"].get("p99")),
                         ms(lat["event_ts_to_arrival_us"].get("p50")),
                         ms(lat["event_ts_to_arrival_us"].get("p99")),
                         lat["negative"], lat["matched"], lat["gen"]["late_sends"],
                         ms(lat["gen"]["max_send_lag_us"]), 100 * lat["hookline_cpu_share"],
                         num(lat["body_bytes_mean"])))
    if fan:
        lines.append("- **Fan-out**: first of the %d arrivals p50 %s, p99 %s after the answer; "
                     "%d of %d changes complete, %d missing, %d duplicate arrivals." % (
                         fan["fanout"], ms(fan["answer_to_first_us"].get("p50")),
                         ms(fan["answer_to_first_us"].get("p99")), fan["matched"],
                         fan["changes"], fan["missing"] + fan["incomplete"], fan["duplicates"]))
    if blinfo:
        ra = blinfo.get("rss_restart", {})
        lines.append("- **Backlog set-up**: %s. Inserting took %.1f s; the database file was "
                     "%s MiB. After the restart with the backlog: VmRSS %s; queue depth %s before "
                     "the run and %s after it (the dead endpoint's retries fall due at about %s/s "
                     "and fail; the run started %s s after the first of them fell due)." % (
                         blinfo.get("method", "?"), blinfo.get("insert_s", 0),
                         num(blinfo.get("db_mib")), mib(ra.get("VmRSS")),
                         "{:,}".format(bl.get("queue_depth_before", 0)) if bl else "?",
                         "{:,}".format(bl.get("queue_depth_after", 0)) if bl else "?",
                         num(blinfo.get("pending_at_start", 0) / 3600.0),
                         num(blinfo.get("start_after_first_due_s"), "%.1f")))
    for ret in rets:
        lines.extend(retention_details(ret))
    if noisy and nl:
        after = r.get("noisy_rss", {})
        lines.append("- **Noisy tenant**: app A's %s changes were accepted at %s/s; its attempts "
                     "then held %d of the %d in-flight slots (its fair share: the rest stays "
                     "free for the others), and %s were pending; after app B's run, %s attempts "
                     "were in flight and %s deliveries pending. App B: %d of %d changes "
                     "delivered (%d missing)." % (
                         "{:,}".format(noisy["changes"]), num(noisy["api_per_s"]),
                         noisy["inflight"], noisy["max_inflight"],
                         "{:,}".format(noisy["queue_depth"]), after.get("inflight", "?"),
                         "{:,}".format(after.get("queue_depth", 0)), nl["matched"],
                         nl["changes"], nl["missing"]))
    if ngx or ceil:
        lines.append("- **Ceiling**: wrk → hl-sink p50 %s, p99 %s; %s. The sink is a small C "
                     "server (`bench/sink.c`: epoll, one thread per core, SO_REUSEPORT) that "
                     "also timestamps each delivery." % (
                         ms(ceil.get("latency_us", {}).get("p50")),
                         ms(ceil.get("latency_us", {}).get("p99")),
                         ("wrk → nginx %s req/s" % num(ngx.get("rps"))) if ngx else
                         "nginx not measured"))
    lines.append("")

    lines.append("## Machine\n")
    lines.append("| | |\n|---|---|")
    for k, label in (("cpu", "CPU"), ("nproc", "Cores (nproc)"), ("mem_gib", "Memory (GiB)"),
                     ("kernel", "Kernel"), ("os", "OS"), ("disk", "Disk (database)"),
                     ("cc", "Compiler"), ("libcurl", "libcurl"),
                     ("libmicrohttpd", "libmicrohttpd"), ("sqlite", "SQLite"), ("wrk", "wrk"),
                     ("nginx", "nginx-light")):
        lines.append("| %s | %s |" % (label, mach.get(k, "?")))
    lines.append("| fdatasync/s on the database's disk | %s |" % num(r.get("fsync_per_s")))
    lines.append("| Load average before / after the run | %s / %s |" % (
        " ".join("%.2f" % x for x in r.get("loadavg_before", [])) or "?",
        " ".join("%.2f" % x for x in r.get("loadavg_after", [])) or "?"))
    lines.append("| Run time | %s s |" % meta.get("elapsed_s", "?"))
    lines.append("")

    lines.append("## How it was measured\n")
    lines.append("""`make bench` = `scripts/deps.sh bench` + `bench/run.sh` (`--quick` for a
development run). Everything runs on 127.0.0.1; every load is bounded in time and count; every
process the script starts is stopped on exit. Tools (`bench/`):

- `hl-sink` (`sink.c`): the receiver. Answers `200 ok` to every POST; counts; while recording,
  keeps per request the arrival time (CLOCK_REALTIME µs) and the body's `eventId`, `timestamp`
  and `data.uid`.
- `hl-load` (`load.c`): the API client. Keep-alive HTTP/1.1, one epoll thread. Closed loop
  (throughput) or open loop at a fixed rate (latency: request *i* is due at *start + i/rate*,
  paced by a timerfd; its record has the time the answer arrived, keyed by the agent `uid` in the
  answer or the `data.uid` it sent to `POST /events`).
- `bench.py`: phases, joins (generator answer ↔ sink arrival on `data.uid`), this file.

Phases, in order, each against the same hookline process (`--log-level warn`, otherwise
defaults: `--threads`, `--max-inflight`, `--per-host` from the environment if set) on a fresh
SQLite database in `build-bench/bench-run/`:

1. **Ceiling**: one change is delivered to the sink and the exact request hookline sent (headers
   and body) is captured; wrk POSTs that request to the sink (and to nginx from Debian with
   `location / { return 200 'ok'; }`). Same run, same machine.
2. **Latency floor**: `hl-load` POSTs to the sink itself at the latency rate: the loopback HTTP
   round trip that every figure below contains.
3. **Latency**: `POST /agents` at a steady rate (open loop); per change, sink arrival minus the
   time the API's answer was read. One app, one webhook (all entities) to the sink. The same
   load runs unmeasured for a couple of seconds first (warm-up), here and in phase 7.
4. **Fan-out**: an app with 100 webhooks on the sink (paths `/f/0` … `/f/99`); per change, the
   100th arrival minus the answer.
5. **Throughput**: `POST /agents`, then `POST /events`, closed loop; deliveries counted at the
   sink over the load window; then `GET /metrics` is polled until `hookline_queue_depth` is 0
   (every attempt recorded) and the sink's count is checked against the changes accepted.
   Then the **dispatcher alone**: an app with 20 webhooks on the sink gets a fixed number of
   `POST /events` as fast as the API takes them, which queues far more deliveries than are sent
   meanwhile; the figure is the rate at which the queue left behind drains (deliveries at the
   sink divided by the time until the queue depth reads 0), so the API's own speed is out of it.
6. **Memory**: VmRSS after start (idle) and VmHWM after phases 3–5 (peak), from
   `/proc/PID/status`.
7. **Backlog**: a second database. hookline creates an app with 100 webhooks on a closed loopback
   port and publishes one real event to it (`HOOKLINE_RETRY_SCHEDULE=0,1h`); hookline is stopped
   and the `sqlite3` CLI copies that event N times (each with its own `eventId`) and adds one
   pending delivery per webhook per copy, each with one failed attempt recorded and its next
   attempt spread over one hour that starts a fixed lead time later (60 s; 15 s in quick mode);
   hookline is started again on it and, once the lead time is up, phase 3 is repeated on a
   healthy webhook of another app while the dead endpoint's retries come due at a steady
   trickle. RSS is read after the restart and after the run. (Starting the spread at the moment
   the rows are written instead would leave a pile of retries already due at the restart; the
   dispatcher claims in `next_attempt_at` order, so new events then wait behind that pile.)
8. **Retention** (`bench/retention.py`): two more fresh databases and hookline processes, the
   same open-loop `POST /events` load at a steady rate to one webhook on the sink. First with
   `--retention 0` (nothing pruned): its API response times, and the database's pages per
   change by table and index (`dbstat`). Then with a short `--retention` for several minutes:
   the file and its WAL sampled every few seconds (they grow until the first events are a
   retention old, then stay flat: the pruner frees what new rows reuse), and the API's response
   times from a little after the retention on, while the pruner works. In both, another app's
   webhook on a closed port gets a few events before the load (one failed attempt, then owed
   for an hour): they grow old with the rest and must all still be listed, pending, at the end;
   every change of the load must reach the sink. Then the same again on PostgreSQL (a
   throwaway server from `scripts/with-postgres.sh`, fsync on, a fresh database per run;
   shorter), where the size is `pg_database_size` and the parts per change are each table's
   `pg_total_relation_size`.
9. **Noisy tenant**: a third database. App B has one webhook on the sink; app A has 16 webhooks
   on 16 TCP blackholes (`bench.py blackhole`: loopback ports that accept every connection and
   never answer, as a firewalled host does), so each of A's attempts hangs until `--timeout`
   (the default, 5 s). App B's `POST /agents` at a steady 20/s is measured as in phase 3 first
   alone (the baseline), then again after A has made 1,000 changes (16,000 deliveries) and its
   attempts hang in flight.

Every hookline here runs with `--api-rate 0`: the load generators drive one app at thousands
of requests per second, far above the per-app request limit (`--api-rate`, 1,000/s by default).
""")
    env = meta.get("env")
    lines.append("hookline's environment: %s. Log lines at warn/error level: %s.\n" % (
        ", ".join("`%s=%s`" % kv for kv in env.items()) if env else "no `HOOKLINE_*` variables",
        "; ".join("%s %d/%d" % (k, v["warn"], v["error"])
                  for k, v in meta.get("log_lines", {}).items()) or "?"))
    cmds = meta.get("commands", [])
    if cmds:
        lines.append("Commands, as run:\n")
        lines.append("```")
        lines.extend(cmds)
        lines.append("```\n")

    text = "\n".join(lines) + "\n"
    text += block("changes", kept) + "\n" + block("notes", kept)
    for name in order:
        if name not in ("changes", "notes"):
            text += "\n" + block(name, kept)
    tmp = a.out + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, a.out)
    print("wrote " + a.out)


def main():
    p = argparse.ArgumentParser(description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)

    def sp(name, fn):
        s = sub.add_parser(name)
        s.set_defaults(fn=fn)
        return s

    s = sp("ports", cmd_ports)
    s.add_argument("n", type=int)
    s = sp("field", cmd_field)
    s.add_argument("name")
    s = sp("put", cmd_put)
    s.add_argument("results")
    s.add_argument("key")
    s.add_argument("value")
    s = sp("webhooks", cmd_webhooks)
    for k in ("--app", "--key", "--url"):
        s.add_argument(k, required=True)
    s.add_argument("--hl-port", type=int, required=True)
    s.add_argument("--count", type=int, default=1)
    s.add_argument("--ports", default="")
    s = sp("probe", cmd_probe)
    for k in ("--app", "--key", "--out"):
        s.add_argument(k, required=True)
    s.add_argument("--hl-port", type=int, required=True)
    s.add_argument("--sink-port", type=int, required=True)
    s = sp("wrk-lua", cmd_wrk_lua)
    for k in ("--capture", "--out", "--results"):
        s.add_argument(k, required=True)
    s = sp("wrk", cmd_wrk)
    for k in ("--lua", "--url", "--name", "--results"):
        s.add_argument(k, required=True)
    s.add_argument("--duration", type=int, default=10)
    s.add_argument("--threads", type=int, default=2)
    s.add_argument("--conns", type=int, default=64)
    s.add_argument("--pid", type=int, default=0)
    s.add_argument("--sink-port", type=int, default=0)
    s = sp("curlmax", cmd_curlmax)
    for k in ("--tools", "--capture", "--url", "--results"):
        s.add_argument(k, required=True)
    s.add_argument("--duration", type=int, default=10)
    s.add_argument("--conns", type=int, default=32)
    s.add_argument("--pid", type=int, required=True)
    s = sp("floor", cmd_floor)
    for k in ("--tools", "--results"):
        s.add_argument(k, required=True)
    s.add_argument("--sink-port", type=int, required=True)
    s.add_argument("--rate", type=float, default=1000)
    s.add_argument("--duration", type=float, default=10)
    s.add_argument("--conns", type=int, default=64)
    s = sp("rss", cmd_rss)
    s.add_argument("--pid", type=int, required=True)
    s.add_argument("--name", required=True)
    s.add_argument("--results", required=True)
    s.add_argument("--hl-port", type=int, default=0)
    s = sp("throughput", cmd_throughput)
    for k in ("--tools", "--results", "--app", "--key", "--kind", "--name", "--prefix"):
        s.add_argument(k, required=True)
    for k in ("--hl-port", "--sink-port", "--pid", "--sink-pid"):
        s.add_argument(k, type=int, required=True)
    s.add_argument("--duration", type=float, default=30)
    s.add_argument("--conns", type=int, default=64)
    s.add_argument("--drain-timeout", type=float, default=120)
    s.add_argument("--depth-samples", type=int, default=1)
    s = sp("burst", cmd_burst)
    for k in ("--tools", "--results", "--app", "--key", "--name", "--prefix"):
        s.add_argument(k, required=True)
    for k in ("--hl-port", "--sink-port", "--pid", "--changes", "--fanout"):
        s.add_argument(k, type=int, required=True)
    s.add_argument("--conns", type=int, default=64)
    s.add_argument("--timeout", type=float, default=180)
    for name, fn in (("latency", cmd_latency),):
        s = sp(name, fn)
        for k in ("--tools", "--results", "--app", "--key", "--name", "--prefix", "--run",
                  "--dump-file"):
            s.add_argument(k, required=True)
        for k in ("--hl-port", "--sink-port", "--pid"):
            s.add_argument(k, type=int, required=True)
        s.add_argument("--kind", default="agents")
        s.add_argument("--rate", type=float, default=1000)
        s.add_argument("--duration", type=float, default=30)
        s.add_argument("--conns", type=int, default=64)
        s.add_argument("--fanout", type=int, default=1)
        s.add_argument("--wait", type=float, default=60)
        s.add_argument("--warmup", type=float, default=0)
    s = sp("blackhole", cmd_blackhole)
    s.add_argument("--ports", required=True)
    s.add_argument("--max-s", type=float, default=3600)
    s.add_argument("--answer-after", type=float, default=0)
    s = sp("neighbours", cmd_neighbours)
    s.add_argument("--results", required=True)
    s.add_argument("--hl-port", type=int, required=True)
    s.add_argument("--closed", type=int, required=True)
    s.add_argument("--slow", type=int, required=True)
    s.add_argument("--answer-after", type=float, required=True)
    s = sp("noisy-load", cmd_noisy_load)
    for k in ("--tools", "--results", "--app", "--key", "--timeout"):
        s.add_argument(k, required=True)
    for k in ("--hl-port", "--changes", "--webhooks", "--min-inflight", "--max-inflight"):
        s.add_argument(k, type=int, required=True)
    s = sp("publish-one", cmd_publish_one)
    s.add_argument("--app", required=True)
    s.add_argument("--key", required=True)
    s.add_argument("--hl-port", type=int, required=True)
    s = sp("backlog-sql", cmd_backlog_sql)
    s.add_argument("--event-id", required=True)
    s.add_argument("--events", type=int, required=True)
    s.add_argument("--dead-port", type=int, required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--lead-s", type=float, default=60)
    s = sp("wait-until", cmd_wait_until)
    s.add_argument("--ms", type=int, required=True)
    s.add_argument("--max-s", type=float, default=120)
    s.add_argument("--results", required=True)
    s.add_argument("--key", required=True)
    s = sp("fsync", cmd_fsync)
    s.add_argument("--dir", required=True)
    s.add_argument("--results", required=True)
    s.add_argument("--seconds", type=float, default=2)
    s = sp("machine", cmd_machine)
    s.add_argument("--dir", required=True)
    s.add_argument("--results", required=True)
    s = sp("loadavg", cmd_loadavg)
    s.add_argument("--name", required=True)
    s.add_argument("--results", required=True)
    s = sp("render", cmd_render)
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
