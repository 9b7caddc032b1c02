#!/usr/bin/python3
"""`biomedclip serve` end to end: real servers on free loopback ports, called with urllib and raw
sockets, compared with the CLI (docs/SERVER.md, docs/ROBUSTNESS.md "HTTP server").

tiny model (32-d) with an index: every endpoint, embeddings (float and base64) against
`embed-text --json` / `embed-image --json` (within 1e-6), /classify (JSON and raw bytes) against
`classify --json` (identical probabilities), /search (text and image) against `search --json`
(identical ranking and scores), /tokenize against `tokenize --json`, /metrics, /v1/models, the
page, thumbnails (indexed files only, no path traversal), the exact JSON the OpenAI Python
client sends, the API key, the bad-request table (each followed by a good request), RSS before
and after a bounded load.
concurrency (tiny model, a worker kept busy by a large request): concurrent requests batched
together (same numbers as one at a time), the queue full (503 + Retry-After), SIGTERM draining an
in-flight request.
full-size model (plain build only): the same parity with the CLI.
A model path that blocks (a FIFO): /health 503 while loading."""
import base64
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import zlib
import struct

import numpy as np
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from serve_util import (BIN, SHARED, TESTDATA, Server, built_with_asan, post_json,  # noqa: E402
                        raw_exchange, request, status_of)

THREADS = "2"
failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)


def cli(*args, cwd=None):
    p = subprocess.run([BIN] + list(args), capture_output=True, text=True, cwd=cwd)
    if p.returncode != 0:
        raise RuntimeError("%s: %s" % (args, p.stderr))
    return [json.loads(line) for line in p.stdout.splitlines() if line.startswith("{")]


def data_uri(path, mime=None):
    with open(path, "rb") as f:
        data = f.read()
    mime = mime or ("image/png" if path.endswith(".png") else "image/jpeg")
    return "data:%s;base64,%s" % (mime, base64.b64encode(data).decode())


def png_bytes(img):
    b = io.BytesIO()
    img.save(b, "PNG")
    return b.getvalue()


def is_error(status, body, want_status, word=None):
    ok = (status == want_status and isinstance(body, dict) and isinstance(body.get("error"), dict)
          and isinstance(body["error"].get("message"), str) and isinstance(body["error"].get("type"), str))
    if ok and word:
        ok = word.lower() in body["error"]["message"].lower()
    return ok


def png_bomb(side):
    """A real PNG of side x side 1-bit gray pixels, all zero: a few KB that decode to side^2
    pixels (3 bytes each once converted to RGB)."""
    row = b"\x00" + b"\x00" * ((side + 7) // 8)
    co = zlib.compressobj(9)
    parts = [co.compress(row * 1000) for _ in range(side // 1000)]
    parts.append(co.compress(row * (side % 1000)))
    parts.append(co.flush())
    idat = b"".join(parts)

    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
    ihdr = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


# ---- tiny model --------------------------------------------------------------------------------

def good_request(srv, what):
    st, body, _ = post_json(srv, "/v1/embeddings", {"input": "good request after " + what})
    check(st == 200 and len(body["data"][0]["embedding"]) == 32, "  ... then a good request succeeds (%s)" % what)


def test_tiny(tmp):
    model = os.path.join(TESTDATA, "tiny.bmc")
    images = sorted(f for f in os.listdir(os.path.join(SHARED, "images")) if f.endswith((".jpg", ".jpeg", ".png")))
    os.makedirs(os.path.join(tmp, "imgs"))
    for f in images:
        shutil.copy(os.path.join(SHARED, "images", f), os.path.join(tmp, "imgs", f))
    Image.new("RGB", (5, 5), (10, 200, 30)).save(os.path.join(tmp, "not_indexed.png"))
    subprocess.run([BIN, "index", "-m", model, "-o", "idx", "--quiet", "imgs"], cwd=tmp, check=True)
    srv = Server(model, "--index", "idx", "--threads", THREADS, "--timeout", "2", cwd=tmp)
    try:
        run_tiny(srv, model, tmp, images)
    finally:
        rc = srv.stop()
        check(rc == 0 and any("stopped" in line for line in srv.lines), "SIGTERM: exit 0 (got %s)" % rc)


def run_tiny(srv, model, tmp, images):
    # /health, /v1/models, the page
    st, hdrs, raw = request(srv, "GET", "/health")
    h = json.loads(raw)
    check(st == 200 and h["status"] == "ok" and h["index_size"] == len(images) and h["embed_dim"] == 32,
          "GET /health: 200, ready, index of %d" % len(images))
    st, hdrs, raw = request(srv, "GET", "/v1/models")
    m = json.loads(raw)
    check(st == 200 and m["object"] == "list" and m["data"][0]["id"] == "tiny" and m["data"][0]["object"] == "model",
          "GET /v1/models: OpenAI list shape, id = model file name")
    st, hdrs, raw = request(srv, "GET", "/")
    page = raw.decode()
    check(st == 200 and hdrs["content-type"].startswith("text/html") and 'id="cls-run"' in page
          and "http://" not in page.replace("http://www.w3.org", "") and "https://" not in page,
          "GET /: the page, with no external URL")

    # embeddings of texts against embed-text --json
    texts = ["chest X-ray with pleural effusion", "", "Brain MRI, T2 FLAIR", "ünïcödé 中文 text", "x " * 400]
    ref = cli("embed-text", "-m", model, "--json", "--threads", THREADS, "--", *texts)
    st, body, hdrs = post_json(srv, "/v1/embeddings", {"input": texts, "model": "tiny"})
    ok = st == 200 and body["object"] == "list" and body["model"] == "tiny" and len(body["data"]) == len(texts)
    diff = max(np.abs(np.array(d["embedding"]) - np.array(r["embedding"])).max()
               for d, r in zip(body["data"], ref)) if ok else 1
    check(ok and all(d["object"] == "embedding" and d["index"] == i for i, d in enumerate(body["data"])),
          "POST /v1/embeddings texts: OpenAI response shape")
    check(ok and diff <= 1e-6, "  texts equal embed-text --json within 1e-6 (max diff %.2g)" % diff)
    ids = [cli("tokenize", "-m", model, "--json", "--", t)[0]["ids"] for t in texts]
    check(ok and body["usage"]["prompt_tokens"] == sum(map(len, ids)) == body["usage"]["total_tokens"],
          "  usage counts the tokens (%s)" % (body["usage"] if ok else None))
    st, b64, _ = post_json(srv, "/v1/embeddings", {"input": texts[0], "encoding_format": "base64"})
    vec = np.frombuffer(base64.b64decode(b64["data"][0]["embedding"]), dtype="<f4") if st == 200 else None
    check(st == 200 and vec.shape == (32,) and np.abs(vec - np.array(ref[0]["embedding"], dtype=np.float32)).max() == 0,
          "  encoding_format base64: little-endian float32, the same floats")

    # images (infinity's convention) against embed-image --json
    files = [os.path.join(tmp, "imgs", f) for f in images[:3]]
    ref = cli("embed-image", "-m", model, "--json", "--threads", THREADS, *files)
    st, body, _ = post_json(srv, "/v1/embeddings", {"input": [data_uri(f) for f in files], "modality": "image",
                                                   "model": "tiny"})
    diff = max(np.abs(np.array(d["embedding"]) - np.array(r["embedding"])).max()
               for d, r in zip(body["data"], ref)) if st == 200 else 1
    check(st == 200 and len(body["data"]) == 3 and diff <= 1e-6,
          "POST /v1/embeddings images (data URIs, modality image) equal embed-image within 1e-6 (%.2g)" % diff)

    # classify: JSON and raw bytes against classify --json
    labels = ["adenocarcinoma histopathology", "brain MRI", "covid line chart", "chest X-ray", "pie chart"]
    img = os.path.join(tmp, "imgs", "chest_X-ray.jpg")
    for template in ("this is a photo of ", "a scan: "):
        ref = cli("classify", "-m", model, "--json", "--threads", THREADS, "--template", template,
                  "--labels", ",".join(labels), img)[0]
        st, body, _ = post_json(srv, "/classify", {"image": data_uri(img), "labels": labels, "template": template})
        check(st == 200 and body["labels"] == labels and body["probs"] == ref["probs"],
              "POST /classify (JSON, template %r): probabilities identical to classify --json" % template)
    ref = cli("classify", "-m", model, "--json", "--threads", THREADS, "--labels", ",".join(labels), img)[0]
    with open(img, "rb") as f:
        data = f.read()
    from urllib.parse import quote
    st, hdrs, raw = request(srv, "POST", "/classify?labels=" + quote(",".join(labels)), data,
                            {"Content-Type": "image/jpeg"})
    check(st == 200 and json.loads(raw)["probs"] == ref["probs"], "POST /classify raw image/jpeg + ?labels=: identical")
    st, body, _ = post_json(srv, "/classify", {"image": data_uri(img), "labels": ",".join(labels)})
    check(st == 200 and body["probs"] == ref["probs"], "POST /classify labels as one comma-separated string")

    # search: text and image against search --json
    for kind, q, arg in (("text", "chest X-ray", "--text"), ("image", "imgs/brain_MRI.jpg", "--image")):
        ref = cli("search", "-m", model, "idx", arg, q, "--top", "4", "--json", "--threads", THREADS, cwd=tmp)
        req = {"text": q} if kind == "text" else {"image": data_uri(os.path.join(tmp, q))}
        req["top_k"] = 4
        st, body, _ = post_json(srv, "/search", req)
        check(st == 200 and body == ref, "POST /search by %s: same files, order and scores as search --json" % kind)
    with open(os.path.join(tmp, "imgs", "brain_MRI.jpg"), "rb") as f:
        st, hdrs, raw = request(srv, "POST", "/search?top_k=2", f.read(), {"Content-Type": "image/jpeg"})
    check(st == 200 and [h["file"] for h in json.loads(raw)] == [h["file"] for h in ref[:2]],
          "POST /search raw image bytes with ?top_k=2")
    st, body, _ = post_json(srv, "/search", {"text": "x", "top_k": 1000})
    check(st == 200 and len(body) == len(images), "POST /search top_k above the index size: every image")

    # tokenize
    for t in texts[:4]:
        st, body, _ = post_json(srv, "/tokenize", {"text": t})
        check(st == 200 and body["tokens"] == cli("tokenize", "-m", model, "--json", "--", t)[0]["ids"],
              "POST /tokenize %r: ids of tokenize --json" % t[:20])

    # thumbnails: indexed files only
    st, hdrs, raw = request(srv, "GET", "/thumbnail?file=imgs/pie_chart.png")
    ok = st == 200 and hdrs["content-type"] == "image/bmp"
    check(ok and Image.open(io.BytesIO(raw)).size == (224, 224), "GET /thumbnail of an indexed file: 224x224 BMP")
    for bad in ("not_indexed.png", "imgs/../not_indexed.png", "../" * 8 + "etc/passwd", "/etc/passwd",
                "imgs", "", "imgs/pie_chart.png%00", "./imgs/pie_chart.png"):
        st, hdrs, raw = request(srv, "GET", "/thumbnail?file=" + bad)
        check(st == 404 and json.loads(raw)["error"]["type"] == "not_found_error", "GET /thumbnail?file=%s: 404" % bad)
    st, _, _ = request(srv, "GET", "/thumbnail")
    check(st == 404, "GET /thumbnail without a file: 404")

    # the exact JSON of the OpenAI Python client (openai/resources/embeddings.py: the fields it
    # sets, encoding_format "base64" when the caller gives none and numpy is installed; httpx
    # serialises compactly), with its headers
    for payload in (b'{"input":["chest X-ray"],"model":"tiny","encoding_format":"base64"}',
                    b'{"input": "chest X-ray", "model": "text-embedding-3-small", "encoding_format": "float"}',
                    b'{"input":["chest X-ray"],"model":"tiny","user":"u1","dimensions":32,"encoding_format":"base64"}'):
        st, hdrs, raw = request(srv, "POST", "/v1/embeddings", payload, {
            "Content-Type": "application/json", "Accept": "application/json", "User-Agent": "OpenAI/Python 1.54.4",
            "X-Stainless-Lang": "python", "X-Stainless-Package-Version": "1.54.4", "X-Stainless-Retry-Count": "0",
            "Authorization": "Bearer sk-no-key-required"})
        body = json.loads(raw) if st == 200 else {}
        e = body.get("data", [{}])[0].get("embedding")
        v = np.frombuffer(base64.b64decode(e), "<f4") if isinstance(e, str) else np.array(e or [0], np.float32)
        ref = np.array(cli("embed-text", "-m", model, "--json", "chest X-ray")[0]["embedding"], np.float32)
        check(st == 200 and v.shape == ref.shape and np.abs(v - ref).max() <= 1e-6,
              "OpenAI client request %s...: accepted, right embedding" % payload[:40].decode())

    # metrics
    st, hdrs, raw = request(srv, "GET", "/metrics")
    text = raw.decode()
    check(st == 200 and hdrs["content-type"].startswith("text/plain; version=0.0.4")
          and 'biomedclip_requests_total{endpoint="/v1/embeddings",status="200"}' in text
          and 'biomedclip_request_duration_seconds_bucket{endpoint="/classify",le="+Inf"}' in text
          and "biomedclip_queue_depth 0" in text and 'biomedclip_items_embedded_total{modality="image"}' in text
          and 'biomedclip_requests_total{endpoint="/thumbnail",status="404"}' in text,
          "GET /metrics: Prometheus text with requests by endpoint and status, histogram, queue, items")
    for line in text.splitlines():
        if line.startswith("biomedclip_items_embedded_total{modality=\"text\"}"):
            check(int(line.split()[-1]) >= len(texts) + 1, "  texts embedded counted (%s)" % line.split()[-1])

    bad_requests(srv, tmp)
    rss_under_load(srv, tmp)


def bad_requests(srv, tmp):
    """docs/ROBUSTNESS.md, "HTTP server": every row, then a good request."""
    port = srv.port
    good_img = data_uri(os.path.join(SHARED, "images", "pie_chart.png"))
    rows = [
        ("malformed JSON", "/v1/embeddings", b'{"input": ["a", ', "application/json", 400, "malformed JSON"),
        ("JSON then garbage", "/v1/embeddings", b'{"input": "a"} x', "application/json", 400, "after the value"),
        ("deep nesting", "/v1/embeddings", b"[" * 5000 + b"]" * 5000, "application/json", 400, "malformed JSON"),
        ("not an object", "/v1/embeddings", b'["a"]', "application/json", 400, "object"),
        ("empty body", "/v1/embeddings", b"", "application/json", 400, "empty"),
        ("wrong Content-Type", "/v1/embeddings", b'{"input": "a"}', "text/plain", 415, "Content-Type"),
        ("form Content-Type (curl -d)", "/tokenize", b"text=a", "application/x-www-form-urlencoded", 415, "application/json"),
        ("unknown field", "/v1/embeddings", b'{"input": "a", "inptu": 1}', "application/json", 400, "unknown field"),
        ("missing input", "/v1/embeddings", b'{"model": "m"}', "application/json", 400, "input"),
        ("token ids as input", "/v1/embeddings", b'{"input": [[1, 2]]}', "application/json", 400, "token ids"),
        ("empty input list", "/v1/embeddings", b'{"input": []}', "application/json", 400, "empty"),
        ("bad encoding_format", "/v1/embeddings", b'{"input": "a", "encoding_format": "hex"}', "application/json", 400, "encoding_format"),
        ("wrong dimensions", "/v1/embeddings", b'{"input": "a", "dimensions": 8}', "application/json", 400, "dimensions"),
        ("bad modality", "/v1/embeddings", b'{"input": "a", "modality": "audio"}', "application/json", 400, "modality"),
        ("10,000 texts", "/v1/embeddings", json.dumps({"input": ["t"] * 10000}).encode(), "application/json", 400, "--max-texts"),
        ("17 images", "/v1/embeddings", json.dumps({"input": [good_img] * 17, "modality": "image"}).encode(), "application/json", 400, "--max-images"),
        ("invalid base64", "/v1/embeddings", b'{"input": ["data:image/png;base64,iVBOR%%%w0KGgo="], "modality": "image"}', "application/json", 400, "base64"),
        ("base64 with a bad length", "/v1/embeddings", b'{"input": ["data:image/png;base64,iVBORw0KGgoA="], "modality": "image"}', "application/json", 400, "base64"),
        ("not a data URI", "/v1/embeddings", b'{"input": ["/etc/passwd"], "modality": "image"}', "application/json", 400, "data URI"),
        ("image URL", "/v1/embeddings", b'{"input": ["http://example.com/a.png"], "modality": "image"}', "application/json", 400, "not fetched"),
        ("undecodable image", "/v1/embeddings", json.dumps({"input": ["data:image/png;base64," + base64.b64encode(b"hello, not an image").decode()], "modality": "image"}).encode(), "application/json", 400, "cannot decode"),
        ("truncated PNG", "/v1/embeddings", json.dumps({"input": ["data:image/png;base64," + base64.b64encode(png_bytes(Image.new("RGB", (64, 64)))[:60]).decode()], "modality": "image"}).encode(), "application/json", 400, "image 0"),
        ("decompression bomb (PNG 15000^2, 1-bit)", "/v1/embeddings", json.dumps({"input": ["data:image/png;base64," + base64.b64encode(png_bomb(15000)).decode()], "modality": "image"}).encode(), "application/json", 413, "--max-pixels"),
        ("JPEG header claiming 60000^2", "/classify", json.dumps({"image": "data:image/jpeg;base64," + base64.b64encode(b"\xff\xd8\xff\xc0\x00\x11\x08\xea\x60\xea\x60\x03\x01\x22\x00\x02\x11\x01\x03\x11\x01\xff\xd9").decode(), "labels": ["a"]}).encode(), "application/json", 413, "--max-pixels"),
        ("classify without labels", "/classify", json.dumps({"image": good_img}).encode(), "application/json", 400, "labels"),
        ("classify with a number label", "/classify", json.dumps({"image": good_img, "labels": ["a", 3]}).encode(), "application/json", 400, "labels"),
        ("search with text and image", "/search", json.dumps({"text": "a", "image": good_img}).encode(), "application/json", 400, "exactly one"),
        ("search top_k 0", "/search", b'{"text": "a", "top_k": 0}', "application/json", 400, "top_k"),
        ("search top_k 2.5", "/search", b'{"text": "a", "top_k": 2.5}', "application/json", 400, "top_k"),
        ("raw image with wrong type", "/v1/embeddings", png_bytes(Image.new("RGB", (8, 8))), "image/png", 415, "Content-Type"),
        ("tokenize without text", "/tokenize", b'{"txt": "a"}', "application/json", 400, "unknown field"),
    ]
    for name, path, body, ctype, want, word in rows:
        st, hdrs, raw = request(srv, "POST", path, body, {"Content-Type": ctype})
        try:
            b = json.loads(raw)
        except ValueError:
            b = raw
        check(is_error(st, b, want, word), "bad request: %s -> %d %s (got %s %s)" % (
            name, want, word, st, b.get("error", {}).get("message", "") if isinstance(b, dict) else raw[:80]))
        good_request(srv, name)

    # DICOM is passed to the library's decoder as it is (application/dicom is accepted, never 415):
    # decoded once the medical-formats decoder is in, else a 400 from the decoder naming the format
    dcm = b"\0" * 128 + b"DICM" + b"\x02\x00\x10\x00UI\x14\x001.2.840.10008.1.2.1\x00"
    st, hdrs, raw = request(srv, "POST", "/classify?labels=a,b", dcm, {"Content-Type": "application/dicom"})
    b = json.loads(raw)
    check(st in (200, 400) and (st == 200 or "decode" in b["error"]["message"]),
          "application/dicom accepted and passed to the decoder (%d %s)" % (st, b.get("error", {}).get("message", "")))
    good_request(srv, "DICOM")

    # 1x1 images are valid images (PIL opens them): an embedding and probabilities come back
    one = "data:image/png;base64," + base64.b64encode(png_bytes(Image.new("RGB", (1, 1), (200, 10, 10)))).decode()
    st, body, _ = post_json(srv, "/v1/embeddings", {"input": [one], "modality": "image"})
    check(st == 200 and len(body["data"][0]["embedding"]) == 32, "a 1x1 image: 200 with an embedding")
    st, body, _ = post_json(srv, "/classify", {"image": one, "labels": ["red", "blue"]})
    check(st == 200 and abs(sum(body["probs"]) - 1) < 1e-5, "a 1x1 image: classify 200")

    st, hdrs, raw = request(srv, "GET", "/v1/embedding")
    check(st == 404 and json.loads(raw)["error"]["type"] == "not_found_error", "unknown endpoint: 404 JSON error")
    good_request(srv, "unknown endpoint")
    st, hdrs, raw = request(srv, "GET", "/v1/embeddings")
    check(st == 405 and hdrs.get("allow") == "POST", "GET on a POST endpoint: 405 with Allow: POST")
    st, hdrs, raw = request(srv, "PUT", "/health", b"x")
    check(st == 405 and "GET" in hdrs.get("allow", ""), "PUT /health: 405")
    st, hdrs, raw = request(srv, "OPTIONS", "/v1/embeddings")
    check(st == 405 and "access-control-allow-origin" not in hdrs, "OPTIONS without --cors: 405, no CORS header")

    # 100 MB body: Content-Length over --max-body is answered 413 before reading it
    head = (b"POST /v1/embeddings HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 104857600\r\n\r\n")
    chunk = b"[" * (1 << 20)
    out, secs, closed = raw_exchange(port, head, timeout=20, chunks=(chunk for _ in range(100)))
    check(status_of(out) == 413 and b"--max-body" in out and closed,
          "100 MB body (Content-Length): 413 then close (%s, %.1f s)" % (status_of(out), secs))
    good_request(srv, "100 MB body")
    # the same without a Content-Length (chunked): the connection is closed at --max-body
    head = (b"POST /v1/embeddings HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n")
    piece = b"100000\r\n" + b"[" * 0x100000 + b"\r\n"
    out, secs, closed = raw_exchange(port, head, timeout=20, chunks=(piece for _ in range(100)))
    check(closed and status_of(out) in (None, 413), "100 MB chunked body: closed at the limit (%.1f s)" % secs)
    good_request(srv, "100 MB chunked body")

    # truncated body: Content-Length promises more than comes, then the client stops writing
    head = (b"POST /v1/embeddings HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 1000\r\n\r\n{\"input\": \"abc")
    out, secs, closed = raw_exchange(port, head, timeout=10, shut_write=True)
    check(closed and status_of(out) in (None, 400), "truncated body: the server closes (%.1f s)" % secs)
    good_request(srv, "truncated body")
    # the same, the client staying silent: closed after --timeout (2 s here)
    out, secs, closed = raw_exchange(port, head, timeout=15)
    check(closed and secs < 8, "truncated body, client silent: closed after the timeout (%.1f s)" % secs)
    good_request(srv, "truncated body, silent client")

    # slow client: half a request line, then nothing
    out, secs, closed = raw_exchange(port, b"POST /v1/embeddings HTTP/1.1\r\nHost:", timeout=15)
    check(closed and 1.5 <= secs < 8, "slow client (no byte after the first few): closed after --timeout 2 s (%.1f s)" % secs)
    good_request(srv, "slow client")
    # garbage instead of HTTP
    out, secs, closed = raw_exchange(port, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + os.urandom(64) + b"\r\n\r\n", timeout=10)
    check(closed and status_of(out) in (None, 400), "TLS hello / garbage: 400 or closed")
    good_request(srv, "garbage")
    # a slow client does not hold up the others
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"POST /v1/embeddings HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n")
    t0 = time.monotonic()
    good_request(srv, "a slow client still connected")
    check(time.monotonic() - t0 < 1.5, "  served while the slow client waits")
    s.close()


def rss_under_load(srv, tmp):
    """A fixed number of requests from 4 threads, twice: RSS after the second round stays within
    16 MB of RSS after the first (the first round warms up allocator arenas and the scratch)."""
    img = data_uri(os.path.join(SHARED, "images", "bone_X-ray.jpg"))
    bodies = [{"input": ["load text %d" % i, "another"]} for i in range(4)] + [{"input": [img], "modality": "image"}]
    errors = []

    def client(k, n):
        for i in range(n):
            st, _, _ = post_json(srv, "/v1/embeddings", bodies[(k + i) % len(bodies)])
            if st != 200:
                errors.append(st)

    def round_(n):
        ts = [threading.Thread(target=client, args=(k, n)) for k in range(4)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
    round_(25)
    before = srv.rss_kb()
    round_(50)
    after = srv.rss_kb()
    if built_with_asan():
        check(not errors, "bounded load (4 clients, 300 requests): no error (RSS %d -> %d KB, not "
              "checked under ASan: its quarantine keeps freed memory)" % (before, after))
    else:
        check(not errors and after - before < 16 * 1024,
              "bounded load (4 clients, 300 requests): no error, RSS %d -> %d KB" % (before, after))


def test_api_key(tmp):
    model = os.path.join(TESTDATA, "tiny.bmc")
    srv = Server(model, "--api-key", "s3cret", "--threads", THREADS, "--cors", "https://app.example.org")
    try:
        st, hdrs, raw = request(srv, "OPTIONS", "/v1/embeddings", headers={
            "Origin": "https://app.example.org", "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type"})
        check(st == 204 and hdrs.get("access-control-allow-origin") == "https://app.example.org"
              and hdrs.get("access-control-allow-methods") == "POST"
              and "Authorization" in hdrs.get("access-control-allow-headers", ""),
              "--cors: OPTIONS preflight 204 without the key, allowing POST and Authorization")
        st, body, hdrs = post_json(srv, "/v1/embeddings", {"input": "a"}, {"Authorization": "Bearer s3cret",
                                                                          "Origin": "https://app.example.org"})
        check(st == 200 and hdrs.get("access-control-allow-origin") == "https://app.example.org",
              "--cors: responses carry Access-Control-Allow-Origin")
        st, body, hdrs = post_json(srv, "/v1/embeddings", {"input": "a"})
        check(is_error(st, body, 401, "missing") and body["error"]["type"] == "authentication_error"
              and hdrs.get("www-authenticate") == "Bearer", "API key: missing -> 401 authentication_error")
        st, body, _ = post_json(srv, "/v1/embeddings", {"input": "a"}, {"Authorization": "Bearer s3cre"})
        check(is_error(st, body, 401, "invalid"), "API key: wrong -> 401")
        st, body, _ = post_json(srv, "/v1/embeddings", {"input": "a"}, {"Authorization": "Bearer s3cret"})
        check(st == 200, "API key: Authorization: Bearer -> 200")
        st, body, _ = post_json(srv, "/classify", {"input": "a"}, {"X-API-Key": "s3cret"})
        check(st == 400, "API key: X-API-Key accepted (then the bad body is a 400)")
        st, _, _ = request(srv, "GET", "/health")
        st2, _, _ = request(srv, "GET", "/")
        st3, _, _ = request(srv, "GET", "/metrics")
        check(st == 200 and st2 == 200 and st3 == 401, "API key: /health and the page open, /metrics needs the key")
        st, body, _ = post_json(srv, "/search", {"text": "a"}, {"Authorization": "Bearer s3cret"})
        check(is_error(st, body, 404, "--index"), "/search without an index: 404 naming --index")
    finally:
        check(srv.stop() == 0, "API-key server: exit 0 on SIGTERM")


def test_loading(tmp):
    """A model path that is a FIFO blocks the loader in open(): the server listens and says 503."""
    fifo = os.path.join(tmp, "model.fifo")
    os.mkfifo(fifo)
    srv = Server(fifo, wait_ready=False)
    try:
        st, hdrs, raw = request(srv, "GET", "/health")
        check(st == 503 and json.loads(raw)["status"] == "loading" and hdrs.get("retry-after") == "1",
              "GET /health while loading: 503 {status: loading}, Retry-After")
        st, body, _ = post_json(srv, "/v1/embeddings", {"input": "a"})
        check(is_error(st, body, 503, "loading"), "POST /v1/embeddings while loading: 503 JSON error")
    finally:
        fd = os.open(fifo, os.O_WRONLY)  # releases the loader, which then refuses the FIFO
        os.close(fd)
        rc = srv.proc.wait(30)
        check(rc == 3, "a model that does not load: exit 3 (got %s)" % rc)


# ---- full-size model ---------------------------------------------------------------------------

def test_full(tmp):
    if built_with_asan():
        # an image through the instrumented full-size tower takes ~9 s of CPU; the server code is
        # exercised under ASan on the tiny model, the full-size kernels by test_vit/bert_parity
        print("built with ASan: the full-size model's parity runs in the plain build only")
        return
    model = os.path.join(TESTDATA, "full.bmc")
    d = os.path.join(tmp, "fimgs")
    os.makedirs(d)
    for f in ("chest_X-ray.jpg", "brain_MRI.jpg", "pie_chart.png"):
        shutil.copy(os.path.join(SHARED, "images", f), d)
    subprocess.run([BIN, "index", "-m", model, "-o", "fidx", "--quiet", "--threads", THREADS, "fimgs"], cwd=tmp, check=True)
    srv = Server(model, "--index", "fidx", "--threads", THREADS, cwd=tmp)
    try:
        texts = ["chest X-ray", "pleural effusion on the left", "brain MRI"]
        ref = cli("embed-text", "-m", model, "--json", "--threads", THREADS, *texts)
        st, body, _ = post_json(srv, "/v1/embeddings", {"input": texts})
        diff = max(np.abs(np.array(a["embedding"]) - np.array(b["embedding"])).max()
                   for a, b in zip(body["data"], ref)) if st == 200 else 1
        check(st == 200 and len(body["data"][0]["embedding"]) == 512 and diff <= 1e-6,
              "full model: texts equal embed-text within 1e-6 (%.2g)" % diff)
        img = os.path.join(d, "chest_X-ray.jpg")
        ref_img = cli("embed-image", "-m", model, "--json", "--threads", THREADS, img)[0]["embedding"]
        st, body, _ = post_json(srv, "/v1/embeddings", {"input": data_uri(img), "modality": "image"})
        diff = np.abs(np.array(body["data"][0]["embedding"]) - np.array(ref_img)).max() if st == 200 else 1
        check(st == 200 and diff <= 1e-6, "full model: image equals embed-image within 1e-6 (%.2g)" % diff)
        labels = ["chest X-ray", "brain MRI", "pie chart", "bone X-ray"]
        ref = cli("classify", "-m", model, "--json", "--threads", THREADS, "--labels", ",".join(labels), img)[0]
        st, body, _ = post_json(srv, "/classify", {"image": data_uri(img), "labels": labels})
        check(st == 200 and body["probs"] == ref["probs"], "full model: /classify identical to classify --json")
        ref = cli("search", "-m", model, "fidx", "--text", "brain MRI", "--json", "--threads", THREADS, cwd=tmp)
        st, body, _ = post_json(srv, "/search", {"text": "brain MRI"})
        check(st == 200 and body == ref, "full model: /search identical to search --json")
    finally:
        check(srv.stop() == 0, "full model: exit 0 on SIGTERM")


def test_concurrency(tmp):
    """Tiny model, one worker, --queue 2. The busy request: 4 copies of the notebook's 1929 x 2207
    X-ray in one request, whose decoding keeps the worker busy for a quarter of a second or more
    whatever the model's size (the tests wait until the worker has it)."""
    model = os.path.join(TESTDATA, "tiny.bmc")
    # --timeout 300: under ASan on a busy machine, a request may wait long behind the busy one
    srv = Server(model, "--threads", THREADS, "--queue", "2", "--batch", "8", "--workers", "1", "--timeout", "300")
    big = {"input": [data_uri(os.path.join(SHARED, "images", "chest_X-ray.jpg"))] * 4, "modality": "image"}
    try:
        # concurrent single-text requests: batched together, same numbers as one at a time
        many = ["finding number %d in the report" % i for i in range(12)]
        alone = {}
        for t in many:
            st, body, _ = post_json(srv, "/v1/embeddings", {"input": t})
            alone[t] = np.array(body["data"][0]["embedding"])
        before = metrics(srv)
        results, lock = {}, threading.Lock()

        def one(t):
            st, body, _ = post_json(srv, "/v1/embeddings", {"input": t})
            with lock:
                results[t] = (st, np.array(body["data"][0]["embedding"]) if st == 200 else None)
        # the first request keeps the worker busy while the 12 others queue up
        busy = threading.Thread(target=post_json, args=(srv, "/v1/embeddings", big))
        busy.start()
        check(wait_busy(srv), "  the worker is busy with the large request")
        ts = [threading.Thread(target=one, args=(t,)) for t in many]
        # with --queue 2, only two can wait: send them two at a time
        for i in range(0, len(ts), 2):
            ts[i].start()
            ts[i + 1].start()
            ts[i].join()
            ts[i + 1].join()
        busy.join()
        ok = all(results[t][0] == 200 for t in many)
        diff = max(np.abs(results[t][1] - alone[t]).max() for t in many) if ok else 1
        check(ok and diff <= 1e-6, "concurrent requests: same embeddings as one at a time (%.2g)" % diff)
        after = metrics(srv)
        items = after["items_text"] - before["items_text"]
        batches = after["batches_text"] - before["batches_text"]
        print("     %d texts in %d encoder calls" % (items, batches))

        # queue full: 503 with Retry-After. A long request keeps the worker busy; of 5 short ones
        # sent meanwhile, 2 wait in the queue (--queue 2) and 3 are refused.
        codes, hdr = [], []

        def short_req(i):
            st, body, hdrs = post_json(srv, "/v1/embeddings", {"input": "short %d" % i})
            codes.append(st)
            if st == 503:
                hdr.append((hdrs.get("retry-after"), body["error"]["type"]))
        busy = threading.Thread(target=post_json, args=(srv, "/v1/embeddings", big))
        busy.start()
        check(wait_busy(srv), "  the worker is busy with the large request")
        ts = [threading.Thread(target=short_req, args=(i,)) for i in range(5)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        busy.join()
        check(sorted(codes) == [200, 200, 503, 503, 503] and all(h == ("1", "overloaded_error") for h in hdr),
              "queue full (--queue 2): 503 + Retry-After: 1 (codes %s)" % sorted(codes))
        good = post_json(srv, "/v1/embeddings", {"input": "after the overload"})[0]
        check(good == 200, "  then a good request succeeds")

        # SIGTERM while a request is in flight: it is answered, then the server exits 0
        res = []
        t = threading.Thread(target=lambda: res.append(post_json(srv, "/v1/embeddings", big)[0]))
        t.start()
        wait_busy(srv)
        srv.proc.send_signal(15)
        t.join()
        rc = srv.proc.wait(60)
        check(res == [200] and rc == 0, "SIGTERM drains: the in-flight request gets 200 (%s), exit %s" % (res, rc))
        try:
            socket.create_connection(("127.0.0.1", srv.port), timeout=2).close()
            refused = False
        except OSError:
            refused = True
        check(refused, "after the drain the port is closed")
    finally:
        srv.stop()


def wait_busy(srv, limit=60):
    """Wait until the worker runs the busy request (its body is parsed and decoded first, which
    takes a while under ASan), so that what is sent next finds the worker occupied."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < limit:
        st, hdrs, raw = request(srv, "GET", "/metrics")
        if "\nbiomedclip_workers_busy 1\n" in raw.decode():
            return True
        time.sleep(0.02)
    return False


def metrics(srv):
    st, hdrs, raw = request(srv, "GET", "/metrics")
    out = {}
    for line in raw.decode().splitlines():
        for key, name in (("items_text", 'biomedclip_items_embedded_total{modality="text"}'),
                          ("batches_text", 'biomedclip_batches_total{modality="text"}')):
            if line.startswith(name):
                out[key] = int(line.split()[-1])
    return out


def main():
    for need in (BIN, os.path.join(TESTDATA, "tiny.bmc"), os.path.join(TESTDATA, "full.bmc")):
        if not os.path.exists(need):
            print("missing %s (build, and run tests/prep first)" % need)
            return 1
    r = subprocess.run([BIN, "serve", "--help"], capture_output=True, text=True)
    if "SERVE=0" in r.stderr:
        print("built with SERVE=0: nothing to test")
        return 0
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        for name, fn in (("tiny", test_tiny), ("api key", test_api_key), ("loading", test_loading),
                         ("concurrency", test_concurrency), ("full", test_full)):
            print("--- %s" % name, flush=True)
            t = time.monotonic()
            try:
                fn(tmp)
            except Exception as e:  # a crash of one part is a failure, the others still run
                import traceback
                traceback.print_exc()
                check(False, "%s: %s" % (name, e))
            print("--- %s: %.1f s" % (name, time.monotonic() - t), flush=True)
    print("%d failure(s) in %.1f s" % (len(failures), time.monotonic() - t0))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
