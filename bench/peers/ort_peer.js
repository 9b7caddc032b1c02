#!/usr/bin/env node
// ONNX Runtime peer of bench/bench.c: the towers exported by export_onnx.py, run by
// onnxruntime-node (its CPU library ships inside the npm package) on the same deterministic
// inputs as bench.c and torch_peer.py, timed the same way (one warm-up call, then the median of
// at least 3 calls and --min-time seconds). Texts run at their own length (mask of ones); the
// 9 zero-shot prompts are padded to the longest with a mask. No image decoding here: the
// zero-shot row starts from model inputs (pixels + ids), like bench's "zeroshot9". When the
// --workload JSON lists "workloads" (bench --workloads), only those are timed.
//
// usage: node ort_peer.js --onnx-dir DIR [--threads N] [--min-time S] [--quick]
//                         [--workload OURS.json] [--json-out FILE]
'use strict';
const T_START = process.hrtime.bigint();
const fs = require('fs');
const os = require('os');
const path = require('path');

let ort;
try {
  ort = require('onnxruntime-node');
} catch (e) {
  console.error('ort_peer: onnxruntime-node is not installed (cd bench/peers && ' +
                'ONNXRUNTIME_NODE_INSTALL=skip npm install): ' + e.message);
  process.exit(3);
}

const TEXT_LENS = [8, 24, 64, 256];

function parseArgs() {
  const a = {threads: os.cpus().length, minTime: 1.0, quick: false};
  const v = process.argv.slice(2);
  for (let i = 0; i < v.length; i++) {
    if (v[i] === '--onnx-dir') a.dir = v[++i];
    else if (v[i] === '--threads') a.threads = parseInt(v[++i], 10);
    else if (v[i] === '--min-time') a.minTime = parseFloat(v[++i]);
    else if (v[i] === '--quick') a.quick = true;
    else if (v[i] === '--workload') a.workload = v[++i];
    else if (v[i] === '--json-out') a.jsonOut = v[++i];
    else { console.error('ort_peer: unknown argument ' + v[i]); process.exit(2); }
  }
  if (!a.dir) { console.error('ort_peer: --onnx-dir is required'); process.exit(2); }
  return a;
}

const now = () => Number(process.hrtime.bigint()) / 1e9;

async function timeit(fn, minReps, minTime, maxTime) {
  let t0 = now();
  await fn();
  const warm = now() - t0;
  const s = [];
  if (warm > maxTime) s.push(warm);
  else {
    const start = now();
    while (s.length < 1000) {
      const a = now();
      await fn();
      s.push(now() - a);
      const spent = now() - start;
      if (s.length >= minReps && spent >= minTime) break;
      if (spent + s[s.length - 1] > maxTime) break;
    }
  }
  s.sort((x, y) => x - y);
  const n = s.length;
  const median = n % 2 ? s[(n - 1) / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
  return {median_s: median, best_s: s[0], n};
}

// ---- deterministic inputs: the formulas of bench/bench_util.h ----
const u32 = (i) => Math.imul(i, 2654435761 | 0) >>> 0;
function pixels(n, S) {
  const x = new Float32Array(n * 3 * S * S);
  for (let i = 0; i < x.length; i++) x[i] = (u32(i) >>> 8) / 16777216 * 4 - 2;
  return x;
}
function textIds(L, j, vocabRows) {
  const mod = Math.min(28000, vocabRows - 5);
  const ids = [2];
  for (let i = 1; i < L - 1; i++) ids.push(5 + ((u32(i + 7919 * (L * 100 + j)) >>> 8) % mod));
  ids.push(3);
  return ids;
}
// [n, width] int64 tensors of ids (0-padded) and mask
function idsTensors(list, width) {
  const n = list.length;
  const ids = new BigInt64Array(n * width), mask = new BigInt64Array(n * width);
  list.forEach((t, r) => t.forEach((id, k) => { ids[r * width + k] = BigInt(id); mask[r * width + k] = 1n; }));
  return {input_ids: new ort.Tensor('int64', ids, [n, width]),
          attention_mask: new ort.Tensor('int64', mask, [n, width])};
}
function normalizeRows(x, n, E) {
  const out = new Float32Array(n * E);
  for (let r = 0; r < n; r++) {
    let ss = 0;
    for (let k = 0; k < E; k++) ss += x[r * E + k] * x[r * E + k];
    const norm = Math.max(Math.sqrt(ss), 1e-12);
    for (let k = 0; k < E; k++) out[r * E + k] = x[r * E + k] / norm;
  }
  return out;
}

async function main() {
  const a = parseArgs();
  const cfg = JSON.parse(fs.readFileSync(path.join(a.dir, 'config.json'), 'utf8'));
  const S = cfg.image_size, E = cfg.embed_dim, ctxLen = cfg.context_length;
  const minTime = a.quick ? 0.05 : a.minTime, maxTime = a.quick ? 2 : 30;
  const opts = {intraOpNumThreads: a.threads, interOpNumThreads: 1, executionMode: 'sequential',
                graphOptimizationLevel: 'all'};
  const results = {};
  const wl = a.workload && fs.existsSync(a.workload) ? JSON.parse(fs.readFileSync(a.workload, 'utf8')) : {};
  const only = wl.workloads || null; // bench --workloads: time these alone
  const row = async (key, what, items, fn) => {
    if (only && !only.includes(key)) return;
    const r = await timeit(fn, 3, minTime, maxTime);
    Object.assign(r, {what, items});
    results[key] = r;
    console.log(`  ${what.padEnd(34)} ${(r.median_s * 1e3).toFixed(2).padStart(9)} ms/call (best ` +
                `${(r.best_s * 1e3).toFixed(2).padStart(8)}, n=${String(r.n).padStart(3)})  ` +
                `${(r.median_s * 1e3 / items).toFixed(2).padStart(8)} ms/item  ` +
                `${(items / r.median_s).toFixed(2).padStart(8)} items/s`);
  };
  console.log(`ort peer: onnxruntime-node ${require('onnxruntime-node/package.json').version}, ` +
              `${a.threads} intra-op threads, ${a.dir}`);

  const px8 = pixels(8, S);
  const imgTensor = (b) => new ort.Tensor('float32', px8.subarray(0, b * 3 * S * S), [b, 3, S, S]);
  let t0 = now();
  const vision = await ort.InferenceSession.create(path.join(a.dir, 'vision.onnx'), opts);
  const tVision = now() - t0;
  await vision.run({pixels: imgTensor(1)});
  const first = now() - t0;
  t0 = now();
  const text = await ort.InferenceSession.create(path.join(a.dir, 'text.onnx'), opts);
  const load = tVision + (now() - t0);
  results.load = {what: 'session creation (both towers)', items: 1, median_s: load, best_s: load, n: 1};
  results.first_image = {what: 'load -> first image embedding', items: 1, median_s: first, best_s: first, n: 1};
  const sinceStart = Number(process.hrtime.bigint() - T_START) / 1e9;
  console.log(`  load ${(load * 1e3).toFixed(1)} ms, first image embedding ${(first * 1e3).toFixed(1)} ms ` +
              `after load started (${(sinceStart * 1e3).toFixed(0)} ms after process start)`);

  for (const b of [1, 8]) {
    const x = imgTensor(b);
    await row(`image_b${b}`, b === 1 ? 'image, batch 1' : `images, batch ${b}`, b, () => vision.run({pixels: x}));
    for (const L of TEXT_LENS) {
      const Lc = Math.min(L, ctxLen);
      const list = [];
      for (let j = 0; j < b; j++) list.push(textIds(Lc, j, cfg.vocab_rows));
      const feeds = idsTensors(list, Lc);
      await row(`text${L}_b${b}`, `text${b === 1 ? '' : 's'} ${Lc} tokens, batch ${b}`, b, () => text.run(feeds));
    }
  }

  // zero-shot from model inputs: 1 image + 9 prompts (ids from bench's JSON when given)
  let zs = wl.zeroshot_ids || null;
  if (!zs) { zs = []; for (let j = 0; j < 9; j++) zs.push(textIds(11, 900 + j, cfg.vocab_rows)); }
  const zfeeds = idsTensors(zs, Math.max(...zs.map((t) => t.length)));
  const x1 = imgTensor(1);
  await row('zeroshot9', 'zero-shot from pixels + ids', 1, async () => {
    const img = normalizeRows((await vision.run({pixels: x1})).embedding.data, 1, E);
    const txt = normalizeRows((await text.run(zfeeds)).embedding.data, zs.length, E);
    const logits = [];
    for (let j = 0; j < zs.length; j++) {
      let d = 0;
      for (let k = 0; k < E; k++) d += img[k] * txt[j * E + k];
      logits.push(cfg.logit_scale * d);
    }
    const mx = Math.max(...logits), ex = logits.map((l) => Math.exp(l - mx)), sum = ex.reduce((p, q) => p + q);
    return ex.map((v) => v / sum);
  });

  const checkImg = normalizeRows((await vision.run({pixels: x1})).embedding.data, 1, E);
  const c24 = Math.min(24, ctxLen);
  const checkTxt = normalizeRows((await text.run(idsTensors([textIds(c24, 0, cfg.vocab_rows)], c24))).embedding.data,
                                 1, E);
  const rssMb = process.resourceUsage().maxRSS * 1024 / 1e6; // KiB -> MB
  console.log(`  peak RSS ${rssMb.toFixed(1)} MB`);
  const out = {impl: 'onnxruntime', threads: a.threads, ort: require('onnxruntime-node/package.json').version,
               node: process.version, peak_rss_all_mb: rssMb, results,
               check_image: Array.from(checkImg), check_text24: Array.from(checkTxt)};
  if (a.jsonOut) {
    fs.writeFileSync(a.jsonOut, JSON.stringify(out, null, 1));
    console.log('wrote ' + a.jsonOut);
  }
}

main().catch((e) => { console.error('ort_peer: ' + (e && e.stack || e)); process.exit(1); });
