#!/usr/bin/python3
"""The page of `biomedclip serve` in a real browser: headless Chromium driven through chromedriver
(W3C WebDriver, JSON over HTTP, spoken here with urllib). Loads the page from a running server
(tiny model, an index of the notebook's images), classifies an image picked in the file input,
runs a text search and an image search, and checks the DOM against the API's answers: the bars'
labels and probabilities equal /classify's, the hits' files and scores equal /search's, every
thumbnail loaded. Keeps a screenshot: $BUILD/test-artifacts/serve_page.png."""
import base64
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from serve_util import BIN, BUILD_DIR, SHARED, TESTDATA, Server, post_json  # noqa: E402

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")
ELEMENT = "element-6066-11e4-a52e-4f735466cecf"  # the W3C WebDriver element key
failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)


class WebDriver:
    def __init__(self, port):
        self.base = "http://127.0.0.1:%d" % port
        self.sid = None

    def call(self, method, path, body=None, timeout=60):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return json.loads(r.read())["value"]
        except urllib.error.HTTPError as e:
            raise RuntimeError("%s %s: %s" % (method, path, e.read()[:500]))

    def new_session(self, profile):
        args = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1280,1100", "--user-data-dir=" + profile, "--no-first-run"]
        caps = {"capabilities": {"alwaysMatch": {"browserName": "chrome",
                                                 "goog:chromeOptions": {"binary": CHROMIUM, "args": args}}}}
        self.sid = self.call("POST", "/session", caps, timeout=120)["sessionId"]

    def s(self, path):
        return "/session/%s%s" % (self.sid, path)

    def get(self, url):
        self.call("POST", self.s("/url"), {"url": url})

    def find(self, css):
        v = self.call("POST", self.s("/element"), {"using": "css selector", "value": css})
        return v[ELEMENT]

    def send_keys(self, css, text):
        self.call("POST", self.s("/element/%s/value" % self.find(css)), {"text": text})

    def click(self, css):
        self.call("POST", self.s("/element/%s/click" % self.find(css)), {})

    def js(self, script, *args):
        return self.call("POST", self.s("/execute/sync"), {"script": script, "args": list(args)})

    def wait(self, script, timeout=30):
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            v = self.js(script)
            if v:
                return v
            time.sleep(0.1)
        return None

    def screenshot(self):
        return base64.b64decode(self.call("GET", self.s("/screenshot")))

    def quit(self):
        if self.sid:
            try:
                self.call("DELETE", "/session/" + self.sid, timeout=30)
            except Exception:
                pass


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def run(tmp, srv, wd, images):
    url = srv.url("/")
    wd.get(url)
    ready = wd.wait("return document.getElementById('status').dataset.ready === '1'")
    status = wd.js("return document.getElementById('status').textContent")
    check(ready and "index of %d images" % len(images) in status, "page loaded, status: %r" % status)
    template = wd.js("return document.getElementById('cls-template').value")
    labels = wd.js("return document.getElementById('cls-labels').value").split("\n")
    check(template == "this is a photo of " and len(labels) == 9 and "chest X-ray" in labels,
          "the notebook's template and labels are prefilled")

    # classify: pick a file in the (hidden) file input, press Classify
    img = os.path.join(tmp, "imgs", "chest_X-ray.jpg")
    wd.send_keys("#cls-file", img)
    wd.wait("return !document.getElementById('cls-run').disabled")
    wd.click("#cls-run")
    n = wd.wait("return document.querySelectorAll('#cls-results .bar').length")
    bars = wd.js("return Array.from(document.querySelectorAll('#cls-results .bar'))"
                 ".map(b => [b.dataset.label, parseFloat(b.dataset.prob), b.querySelector('.fill').style.width])")
    with open(img, "rb") as f:
        uri = "data:image/jpeg;base64," + base64.b64encode(f.read()).decode()
    st, api, _ = post_json(srv, "/classify", {"image": uri, "labels": labels, "template": template})
    want = sorted(zip(api["labels"], api["probs"]), key=lambda x: -x[1])
    check(n == 9 and [b[0] for b in bars] == [w[0] for w in want]
          and all(abs(b[1] - w[1]) < 1e-7 for b, w in zip(bars, want)),
          "classify: 9 bars, sorted, the labels and probabilities of POST /classify")
    check(all(b[2].endswith("%") and abs(float(b[2][:-1]) - 100 * b[1]) < 0.01 for b in bars),
          "classify: bar widths are the probabilities")
    err = wd.js("return document.getElementById('cls-error').textContent")
    check(err == "", "classify: no error shown (%r)" % err)

    # search by text
    wd.send_keys("#search-text", "chest X-ray")
    wd.click("#search-run")
    n = wd.wait("return document.querySelectorAll('#search-results .hit').length")
    loaded = wd.wait("const im = Array.from(document.querySelectorAll('#search-results img'));"
                     "return im.length > 0 && im.every(i => i.complete && i.naturalWidth === 224)")
    hits = wd.js("return Array.from(document.querySelectorAll('#search-results .hit'))"
                 ".map(h => [h.dataset.file, parseFloat(h.dataset.score)])")
    st, api, _ = post_json(srv, "/search", {"text": "chest X-ray", "top_k": 12})
    check(n == len(images) and [h[0] for h in hits] == [a["file"] for a in api]
          and all(abs(h[1] - a["score"]) < 1e-7 for h, a in zip(hits, api)),
          "text search: %d hits, the files and scores of POST /search" % len(hits))
    check(bool(loaded), "text search: every thumbnail loaded (224x224)")
    png = wd.screenshot()
    art = os.path.join(BUILD_DIR, "test-artifacts")
    os.makedirs(art, exist_ok=True)
    with open(os.path.join(art, "serve_page.png"), "wb") as f:
        f.write(png)
    check(png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10000,
          "screenshot kept: %s (%d bytes)" % (os.path.join(art, "serve_page.png"), len(png)))

    # search by image: picking a file clears the text query
    q = os.path.join(tmp, "imgs", "brain_MRI.jpg")
    wd.send_keys("#search-file", q)
    wd.wait("return document.getElementById('search-text').value === ''")
    wd.js("document.getElementById('search-results').textContent = ''")
    wd.click("#search-run")
    wd.wait("return document.querySelectorAll('#search-results .hit').length")
    hits = wd.js("return Array.from(document.querySelectorAll('#search-results .hit')).map(h => h.dataset.file)")
    with open(q, "rb") as f:
        uri = "data:image/jpeg;base64," + base64.b64encode(f.read()).decode()
    st, api, _ = post_json(srv, "/search", {"image": uri, "top_k": 12})
    check(hits == [a["file"] for a in api] and hits[0] == "imgs/brain_MRI.jpg",
          "image search: the ranking of POST /search, the query image first")


def main():
    for need in (CHROMIUM, CHROMEDRIVER):
        if not os.path.exists(need):
            # CI installs both (tools/deps-debian.txt); elsewhere the page test cannot run
            print("%s is not installed (apt-get install chromium chromium-driver): page test skipped" % need)
            return 0
    r = subprocess.run([BIN, "serve", "--help"], capture_output=True, text=True)
    if "SERVE=0" in r.stderr:
        print("built with SERVE=0: nothing to test")
        return 0
    model = os.path.join(TESTDATA, "tiny.bmc")
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        os.makedirs(os.path.join(tmp, "imgs"))
        images = sorted(f for f in os.listdir(os.path.join(SHARED, "images")) if f.endswith((".jpg", ".jpeg", ".png")))
        for f in images:
            shutil.copy(os.path.join(SHARED, "images", f), os.path.join(tmp, "imgs", f))
        subprocess.run([BIN, "index", "-m", model, "-o", "idx", "--quiet", "imgs"], cwd=tmp, check=True)
        srv = Server(model, "--index", "idx", "--threads", "2", cwd=tmp)
        port = free_port()
        drv = subprocess.Popen([CHROMEDRIVER, "--port=%d" % port], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
        wd = WebDriver(port)
        try:
            for _ in range(100):
                try:
                    if wd.call("GET", "/status", timeout=2).get("ready"):
                        break
                except Exception:
                    time.sleep(0.1)
            wd.new_session(os.path.join(tmp, "profile"))
            run(tmp, srv, wd, images)
        except Exception as e:
            import traceback
            traceback.print_exc()
            check(False, "browser session: %s" % e)
        finally:
            wd.quit()
            drv.terminate()
            try:
                drv.wait(10)
            except subprocess.TimeoutExpired:
                drv.kill()
            check(srv.stop() == 0, "server: exit 0 on SIGTERM")
    print("%d failure(s) in %.1f s" % (len(failures), time.monotonic() - t0))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
