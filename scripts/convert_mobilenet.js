#!/usr/bin/env node
// convert_mobilenet.js - turn the MobileNetV2 that the npm package nsfwjs
// 4.4.0 ships (TensorFlow.js layers format, uint8-quantized, both files UMD
// JavaScript modules) into a safetensors file of float32 tensors under their
// Keras names, for pixvec's cnn embedder.
//
// usage: node scripts/convert_mobilenet.js MODEL_DIR OUT.safetensors
//   MODEL_DIR holds model.min.js (topology + weightsManifest) and the shard
//   files the manifest names (group1-shard1of1.min.js), as in the package's
//   dist/models/mobilenet_v2/.
//
// Dequantization is TF.js's: value = q * scale + min per tensor. The
// safetensors layout: an 8-byte little-endian header length N, N bytes of
// JSON {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__":
// {...}}, then the raw little-endian data. Tensors are written in name
// order, each 4-byte aligned (the header is padded with spaces to a
// multiple of 8).
'use strict';
const fs = require('fs');
const path = require('path');

function die(msg) {
  process.stderr.write(`convert_mobilenet: ${msg}\n`);
  process.exit(1);
}

if (process.argv.length !== 4) die('usage: node convert_mobilenet.js MODEL_DIR OUT.safetensors');
const dir = path.resolve(process.argv[2]);
const out = process.argv[3];

const model = require(path.join(dir, 'model.min.js'));
if (!model || !model.weightsManifest || !model.modelTopology)
  die(`${dir}/model.min.js: no modelTopology / weightsManifest`);

const tensors = [];
for (const group of model.weightsManifest) {
  // A group's shards are one byte stream, cut into files.
  const parts = group.paths.map((p) => {
    const mod = require(path.join(dir, `${p}.min.js`));
    if (typeof mod !== 'string') die(`${p}.min.js does not export a base64 string`);
    return Buffer.from(mod, 'base64');
  });
  const bytes = Buffer.concat(parts);
  let off = 0;
  for (const w of group.weights) {
    const n = w.shape.reduce((a, b) => a * b, 1);
    const q = w.quantization;
    const f = new Float32Array(n);
    if (q) {
      if (q.dtype !== 'uint8') die(`${w.name}: quantization ${q.dtype} not handled`);
      if (off + n > bytes.length) die(`${w.name}: shard data ends early`);
      for (let i = 0; i < n; i++) f[i] = bytes[off + i] * q.scale + q.min;
      off += n;
    } else {
      if (w.dtype !== 'float32') die(`${w.name}: dtype ${w.dtype} not handled`);
      if (off + 4 * n > bytes.length) die(`${w.name}: shard data ends early`);
      for (let i = 0; i < n; i++) f[i] = bytes.readFloatLE(off + 4 * i);
      off += 4 * n;
    }
    tensors.push({ name: w.name, shape: w.shape, data: f });
  }
  if (off !== bytes.length) die(`group ${group.paths}: ${bytes.length - off} bytes left over`);
}

tensors.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
const header = {
  __metadata__: {
    source: 'npm nsfwjs 4.4.0, dist/models/mobilenet_v2 (Keras MobileNetV2, alpha 1.0, 224x224)',
    converter: 'pixvec scripts/convert_mobilenet.js',
    keras_version: String(model.modelTopology.keras_version || ''),
  },
};
let pos = 0;
for (const t of tensors) {
  header[t.name] = { dtype: 'F32', shape: t.shape, data_offsets: [pos, pos + 4 * t.data.length] };
  pos += 4 * t.data.length;
}
let json = JSON.stringify(header);
while ((8 + Buffer.byteLength(json)) % 8 !== 0) json += ' ';
const hlen = Buffer.alloc(8);
hlen.writeBigUInt64LE(BigInt(Buffer.byteLength(json)));
const body = Buffer.alloc(pos);
pos = 0;
for (const t of tensors) {
  for (let i = 0; i < t.data.length; i++) body.writeFloatLE(t.data[i], pos + 4 * i);
  pos += 4 * t.data.length;
}
const tmp = `${out}.tmp`;
fs.writeFileSync(tmp, Buffer.concat([hlen, Buffer.from(json), body]));
fs.renameSync(tmp, out);
process.stdout.write(`convert_mobilenet: ${tensors.length} tensors, ${pos} bytes of float32 -> ${out}\n`);
