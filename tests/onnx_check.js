// onnx_check.js MODEL DIR — ONNX Runtime (the npm package onnxruntime-node) runs the
// exported MODEL on DIR/x.bin and its logits are held against ours, DIR/logits.bin
// (dp_infer_run; both written by test_onnx --logits, shapes in DIR/shape.txt "N C S K").
// Per image, max |ORT - ours| over the classes divided by max |ours| must be <= 1e-4.
// Also: the input and output names, and the batch run at size N and at size 1 (N is
// symbolic).  (The metadata_props are read by test_onnx --logits, which prepares the
// images from them.)
// Exit status 0, or 1 with what differs.  DP_ORT_DIR: where tools/deps.sh installed it.
'use strict';
const fs = require('fs');
const path = require('path');
const ort = require(path.join(process.env.DP_ORT_DIR, 'node_modules', 'onnxruntime-node'));

const TOL = 1e-4;

function floats(file) {
  const b = fs.readFileSync(file);
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.length));
}

async function main() {
  const [model, dir] = process.argv.slice(2);
  const [n, c, s, k] = fs.readFileSync(path.join(dir, 'shape.txt'), 'utf8').trim().split(/\s+/).map(Number);
  const x = floats(path.join(dir, 'x.bin')), ours = floats(path.join(dir, 'logits.bin'));
  const fail = (msg) => { console.log(`FAIL: ${model}: ${msg}`); process.exit(1); };
  if (x.length !== n * c * s * s || ours.length !== n * k) fail('x.bin or logits.bin has the wrong size');
  const sess = await ort.InferenceSession.create(model, { intraOpNumThreads: 1, interOpNumThreads: 1 });
  if (sess.inputNames.join() !== 'input' || sess.outputNames.join() !== 'logits')
    fail(`inputs ${sess.inputNames} and outputs ${sess.outputNames}, expected input and logits`);
  const run = async (xs, m) => (await sess.run({ input: new ort.Tensor('float32', xs, [m, c, s, s]) })).logits;
  const y = await run(x, n);
  if (y.dims.join() !== [n, k].join()) fail(`logits of shape [${y.dims}], expected [${n},${k}]`);
  let worst = 0, at = -1;
  for (let i = 0; i < n; i++) {
    let d = 0, m = 0;
    for (let j = 0; j < k; j++) {
      d = Math.max(d, Math.abs(y.data[i * k + j] - ours[i * k + j]));
      m = Math.max(m, Math.abs(ours[i * k + j]));
    }
    const r = m > 0 ? d / m : d;
    if (!(r <= worst)) worst = r, at = i; // NaN counts as worst
  }
  // batch 1: the first image alone gives the first row
  const y1 = await run(x.slice(0, c * s * s), 1);
  let d1 = 0, m1 = 0;
  for (let j = 0; j < k; j++) {
    d1 = Math.max(d1, Math.abs(y1.data[j] - y.data[j]));
    m1 = Math.max(m1, Math.abs(y.data[j]));
  }
  const r1 = m1 > 0 ? d1 / m1 : d1;
  const v = (ort.env.versions && ort.env.versions.node) || require(path.join(process.env.DP_ORT_DIR, 'node_modules',
    'onnxruntime-node', 'package.json')).version;
  console.log(`${path.basename(path.dirname(model))}: ${n} images, max |ORT - ours| / max |ours| = ` +
              `${worst.toExponential(2)} (image ${at}); batch 1 vs batch ${n}: ${r1.toExponential(2)}; ` +
              `onnxruntime-node ${v}`);
  if (!(worst <= TOL)) fail(`image ${at}: relative difference ${worst} > ${TOL}`);
  if (!(r1 <= TOL)) fail(`batch 1 differs from batch ${n} by ${r1}`);
}

main().catch((e) => { console.log(`FAIL: ${e.message || e}`); process.exit(1); });
