#!/usr/bin/python3
"""Load test of `biomedclip serve` on loopback with wrk (Debian `wrk`): for text and image
embeddings at 1, 4 and 16 concurrent clients, a fixed duration each (wrk stops by itself):
requests/s, p50/p99 latency, errors, the server's CPU use, its RSS before and after.
docs/PERF.md ("HTTP server") has a run; tests/py/test_serve_load.py runs it short on the tiny
model.

    python3 bench/serve_load.py -m MODEL [--seconds 5] [--clients 1,4,16] [--workers W]
                                [--threads N] [--batch N] [--kinds text,image] [--json OUT]
"""
import argparse
import base64
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests", "py"))
from serve_util import SHARED, Server, request  # noqa: E402

LUA = """
local f = assert(io.open(os.getenv("BMC_BODY"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
"""
TEXT = "chest X-ray of a 64-year-old patient showing a small left pleural effusion and cardiomegaly"


def to_ms(v, unit):
    return float(v) * {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}[unit]


def parse_wrk(out):
    r = {"requests": 0, "rps": 0.0, "p50_ms": None, "p99_ms": None, "non2xx": 0, "socket_errors": 0}
    m = re.search(r"(\d+) requests in", out)
    if m:
        r["requests"] = int(m.group(1))
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if m:
        r["rps"] = float(m.group(1))
    for pct, key in (("50", "p50_ms"), ("99", "p99_ms")):
        m = re.search(r"^\s+%s(?:\.000)?%%\s+([\d.]+)(us|ms|s|m)\b" % pct, out, re.M)
        if m:
            r[key] = to_ms(m.group(1), m.group(2))
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if m:
        r["non2xx"] = int(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if m:
        r["socket_errors"] = sum(int(x) for x in m.groups())
    return r


def wait_idle(srv, limit=120):
    """wrk stops at its deadline with requests still in the server: wait until they are answered,
    so that each run starts on an idle server and the RSS is read at rest."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < limit:
        st, _, raw = request(srv, "GET", "/metrics")
        m = re.search(r"^biomedclip_requests_in_flight (\d+)", raw.decode(), re.M)
        if m and int(m.group(1)) <= 1:  # the /metrics request itself
            return
        time.sleep(0.05)


def run_wrk(srv, body_file, clients, seconds, lua):
    env = dict(os.environ, BMC_BODY=body_file)
    cmd = ["wrk", "-t", str(min(clients, 4)), "-c", str(clients), "-d", "%ds" % seconds, "--latency",
           "--timeout", "60s", "-s", lua, srv.url("/v1/embeddings")]
    cpu0, t0 = srv.cpu_seconds(), time.monotonic()
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=seconds + 120)
    wall = time.monotonic() - t0
    r = parse_wrk(p.stdout)
    r["server_cpu"] = (srv.cpu_seconds() - cpu0) / wall  # cores busy on average
    r["wrk_rc"] = p.returncode
    r["clients"] = clients
    return r


def measure(model, seconds, clients, server_args, cwd, image=None, kinds=("text", "image")):
    img = image or os.path.join(SHARED, "images", "chest_X-ray.jpg")
    with open(img, "rb") as f:
        uri = "data:image/jpeg;base64," + base64.b64encode(f.read()).decode()
    bodies = {"text": {"input": TEXT, "model": "m"}, "image": {"input": [uri], "modality": "image"}}
    lua = os.path.join(cwd, "post.lua")
    with open(lua, "w") as f:
        f.write(LUA)
    files = {}
    for k, b in bodies.items():
        files[k] = os.path.join(cwd, k + ".json")
        with open(files[k], "w") as f:
            json.dump(b, f)
    srv = Server(model, *server_args)
    try:
        for k in bodies:  # warm-up: the model's pages, the contexts' scratch, malloc's arenas
            for _ in range(3):
                st, _, _ = request(srv, "POST", "/v1/embeddings", bodies[k])
                assert st == 200, st
        rss0 = srv.rss_kb()
        rows = []
        for kind in kinds:
            for c in clients:
                r = run_wrk(srv, files[kind], c, seconds, lua)
                wait_idle(srv)
                r["kind"] = kind
                r["rss_kb"] = srv.rss_kb()
                rows.append(r)
        rss1 = srv.rss_kb()
        st, _, raw = request(srv, "GET", "/metrics")
        metrics = {}
        for line in raw.decode().splitlines():
            m = re.match(r'biomedclip_(items_embedded|batches)_total\{modality="(\w+)"\} (\d+)', line)
            if m:
                metrics["%s_%s" % (m.group(1), m.group(2))] = int(m.group(3))
    finally:
        rc = srv.stop()
    return {"rows": rows, "rss_before_kb": rss0, "rss_after_kb": rss1, "exit": rc, "metrics": metrics,
            "server_args": server_args, "nproc": os.cpu_count(), "seconds": seconds}


def table(res):
    lines = ["| workload | clients | requests | req/s | p50 ms | p99 ms | errors | server CPU (cores) |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in res["rows"]:
        lines.append("| %s | %d | %d | %.1f | %.1f | %.1f | %d | %.2f |" % (
            r["kind"], r["clients"], r["requests"], r["rps"], r["p50_ms"] or 0, r["p99_ms"] or 0,
            r["non2xx"] + r["socket_errors"], r["server_cpu"]))
    m = res["metrics"]
    lines.append("")
    lines.append("RSS %.1f MB before, %.1f MB after; server %s; %d cores; texts %s in %s encoder calls, "
                 "images %s in %s" % (res["rss_before_kb"] / 1024, res["rss_after_kb"] / 1024,
                                       " ".join(res["server_args"]), res["nproc"], m.get("items_embedded_text"),
                                       m.get("batches_text"), m.get("items_embedded_image"), m.get("batches_image")))
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-m", "--model", required=True)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--clients", default="1,4,16")
    ap.add_argument("--workers", default=None)
    ap.add_argument("--threads", default=None)
    ap.add_argument("--batch", default="8")
    ap.add_argument("--json", default=None)
    ap.add_argument("--kinds", default="text,image")
    a = ap.parse_args()
    if not shutil.which("wrk"):
        print("wrk is not installed (apt-get install wrk)")
        return 2
    args = (["--batch", a.batch] + (["--workers", a.workers] if a.workers else [])
            + (["--threads", a.threads] if a.threads else []))
    with tempfile.TemporaryDirectory() as tmp:
        res = measure(a.model, a.seconds, [int(c) for c in a.clients.split(",")], args, tmp,
                      kinds=a.kinds.split(","))
    print(table(res))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
