"""Helpers for the `biomedclip serve` tests (tests/py/test_serve*.py) and bench/serve_load.py:
start a real server on a free loopback port, call it with urllib or a raw socket, stop it."""
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("BUILD", "build")
BUILD_DIR = BUILD if os.path.isabs(BUILD) else os.path.join(ROOT, BUILD)
BIN = os.path.join(BUILD_DIR, "biomedclip")
TESTDATA = os.environ.get("BMC_TESTDATA", os.path.join(BUILD_DIR, "testdata"))
SHARED = os.environ.get("SHARED_DATA", os.path.join(ROOT, "..", "shared", "data"))


def built_with_asan():
    """AddressSanitizer keeps freed memory in quarantine: RSS checks mean nothing under it."""
    try:
        with open(BIN, "rb") as f:
            return b"__asan_init" in f.read()
    except OSError:
        return False


class Server:
    """`biomedclip serve --port 0 ...` in a child process; stderr is collected in a thread."""

    def __init__(self, model, *args, cwd=None, wait_ready=True, env=None):
        self.proc = subprocess.Popen([BIN, "serve", "-m", model, "--port", "0"] + list(args),
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                     cwd=cwd, env=env)
        self.lines = []
        self.port = None
        self._ready = threading.Event()
        self._listening = threading.Event()
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()
        if not self._listening.wait(30):
            self.proc.kill()
            raise RuntimeError("server did not start listening: %r" % self.lines)
        if wait_ready and not self._ready.wait(60):
            self.proc.kill()
            raise RuntimeError("server not ready: %r" % self.lines)

    def _drain(self):
        for line in self.proc.stderr:
            self.lines.append(line.rstrip("\n"))
            m = re.search(r"listening on http://\S+:(\d+)", line)
            if m:
                self.port = int(m.group(1))
                self._listening.set()
            if "serve: ready" in line:
                self._ready.set()
        self._listening.set()

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def rss_kb(self):
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def cpu_seconds(self):
        with open("/proc/%d/stat" % self.proc.pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self, sig=signal.SIGTERM, timeout=60):
        """Signal the server and wait; returns its exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self._reader.join(10)  # the last lines of stderr
        return rc


def request(srv, method, path, body=None, headers=None, timeout=300):
    """(status, headers dict with lowercase names, body bytes); HTTP errors are returned too."""
    if isinstance(body, (dict, list)):
        body = json.dumps(body).encode()
        headers = dict({"Content-Type": "application/json"}, **(headers or {}))
    req = urllib.request.Request(srv.url(path), data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


def post_json(srv, path, obj, headers=None):
    status, hdrs, body = request(srv, "POST", path, obj, headers)
    try:
        return status, json.loads(body), hdrs
    except ValueError:
        return status, body, hdrs


def raw_exchange(port, data, timeout=10, shut_write=False, chunks=None):
    """Send bytes on a new connection (then optionally the chunks, stopping quietly when the
    server closes) and read until the server closes or the timeout. Returns (response bytes,
    seconds until the close, whether the server closed)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    t0 = time.monotonic()
    try:
        s.sendall(data)
        for c in chunks or ():
            s.sendall(c)
        if shut_write:
            s.shutdown(socket.SHUT_WR)
    except (BrokenPipeError, ConnectionResetError):
        pass
    out = b""
    closed = False
    try:
        while True:
            b = s.recv(65536)
            if not b:
                closed = True
                break
            out += b
    except ConnectionResetError:
        closed = True
    except socket.timeout:
        pass
    s.close()
    return out, time.monotonic() - t0, closed


def status_of(raw):
    m = re.match(rb"HTTP/1\.[01] (\d{3})", raw)
    return int(m.group(1)) if m else None
