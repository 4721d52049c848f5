// bench_infer_ort.js MODEL X.BIN B C S THREADS REPS WARM OUT.BIN — ONNX Runtime (the npm
// package onnxruntime-node, from $DP_ORT_DIR/node_modules as tools/deps.sh installs it) on an
// exported model: latency at batch 1 (the first image of X.BIN) and the time of a batch of B,
// each the median of REPS runs after WARM warm-up runs, intra-op threads THREADS (inter-op 1).
// Writes the last batch's logits to OUT.BIN and one JSON line to stdout; run by
// bench/bench_infer.py.
'use strict';
const fs = require('fs');
const path = require('path');
const ort = require(path.join(process.env.DP_ORT_DIR, 'node_modules', 'onnxruntime-node'));

async function main() {
  const [model, xfile, b, c, s, threads, reps, warm, out] = process.argv.slice(2);
  const [B, C, S, T, R, W] = [b, c, s, threads, reps, warm].map(Number);
  const buf = fs.readFileSync(xfile);
  const x = new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.length));
  if (x.length !== B * C * S * S) throw new Error(`${xfile}: ${x.length} floats, expected ${B * C * S * S}`);
  const sess = await ort.InferenceSession.create(model, {intraOpNumThreads: T, interOpNumThreads: 1,
                                                         executionMode: 'sequential'});
  const feeds = (n) => ({input: new ort.Tensor('float32', x.slice(0, n * C * S * S), [n, C, S, S])});
  const median = (v) => { v.sort((p, q) => p - q); const m = v.length >> 1; return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2; };
  const time = async (n) => {
    const f = feeds(n);
    let y;
    for (let i = 0; i < W; i++) y = (await sess.run(f)).logits;
    const t = [];
    for (let i = 0; i < R; i++) {
      const t0 = process.hrtime.bigint();
      y = (await sess.run(f)).logits;
      t.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
    return [median(t), y];
  };
  const [ms1] = await time(1);
  const [msb, y] = await time(B);
  fs.writeFileSync(out, Buffer.from(y.data.buffer, y.data.byteOffset, y.data.byteLength));
  const v = require(path.join(process.env.DP_ORT_DIR, 'node_modules', 'onnxruntime-node', 'package.json')).version;
  console.log(JSON.stringify({impl: 'onnxruntime', version: v, threads: T, reps: R, batch: B, batch1_ms: ms1,
                              batch_ms: msb, images_per_s: 1e3 * B / msb}));
}

main().catch((e) => { console.error(`bench_infer_ort: ${e.message || e}`); process.exit(1); });
