// ONNX Runtime peer of `mmfuse detect` (issue 16 item 5): runs an Ultralytics YOLOv8 ONNX export with
// onnxruntime-node on the CPU and reports ms per image, end to end except the JPEG decode:
// read a binary PPM (P6) + letterbox (Ultralytics' rules: scale = min ratio, round, grey 114, bilinear,
// /255, CHW) + session.run + decode (1, 4+nc, A) + class-aware NMS + boxes scaled back and clipped.
// Node has no JPEG decoder; convert the images once, e.g.
//   /usr/bin/python3 -c 'import cv2,sys; [cv2.imwrite(sys.argv[1]+"/"+p.rsplit("/",1)[-1]+".ppm", cv2.imread(p)) for p in sys.argv[2:]]' DIR IMAGES...
// and add the decode time separately if the comparison needs it (libjpeg-turbo: a few ms for 640x480).
//
//   ORT_NODE_MODULES=DIR [IMGSZ=640,640] node bench/ort_yolo.mjs MODEL.onnx THREADS ROUNDS IMAGE.ppm...
// DIR is a node_modules holding onnxruntime-node (npm install --ignore-scripts onnxruntime-node); NODE_PATH
// works too. One warm-up pass over the images, then ROUNDS timed passes; prints one JSON object with the
// median ms per image (total, and the letterbox / run / postprocess parts) and detections per image.
import {readFileSync} from 'node:fs';
import {createRequire} from 'node:module';
import path from 'node:path';

const modulesDir = process.env.ORT_NODE_MODULES;
const require = createRequire(modulesDir ? path.join(path.resolve(modulesDir), 'x.js') : import.meta.url);
const ort = require('onnxruntime-node');

function readPpm(file) {
  const bytes = readFileSync(file);
  const fields = [];
  let i = 0;
  while (fields.length < 4) {
    while (/\s/.test(String.fromCharCode(bytes[i]))) ++i;
    if (bytes[i] === 0x23) {  // comment
      while (bytes[i] !== 0x0a) ++i;
      continue;
    }
    let start = i;
    while (!/\s/.test(String.fromCharCode(bytes[i]))) ++i;
    fields.push(bytes.subarray(start, i).toString('latin1'));
  }
  if (fields[0] !== 'P6' || fields[3] !== '255') throw new Error(`${file}: not an 8-bit binary PPM (P6)`);
  const width = Number(fields[1]), height = Number(fields[2]);
  return {width, height, rgb: bytes.subarray(i + 1, i + 1 + width * height * 3)};
}

// Ultralytics LetterBox(auto=False, scaleup=True, center=True) into a (1, 3, H, W) float tensor.
// Bilinear with half-pixel centres like cv2.INTER_LINEAR (not its fixed-point rounding: timing only).
function letterbox(image, netH, netW) {
  const r = Math.min(netH / image.height, netW / image.width);
  const newW = Math.round(image.width * r), newH = Math.round(image.height * r);
  const dw = (netW - newW) / 2, dh = (netH - newH) / 2;
  const top = Math.round(dh - 0.1), left = Math.round(dw - 0.1);
  const plane = netH * netW;
  const data = new Float32Array(3 * plane).fill(114 / 255);
  const {rgb, width, height} = image;
  const sx = width / newW, sy = height / newH;
  const cx0 = new Int32Array(newW), cx1 = new Int32Array(newW), cwx = new Float32Array(newW);
  for (let x = 0; x < newW; ++x) {
    const fx = Math.max((x + 0.5) * sx - 0.5, 0);
    const x0 = Math.min(Math.floor(fx), width - 1);
    cx0[x] = x0 * 3; cx1[x] = Math.min(x0 + 1, width - 1) * 3; cwx[x] = fx - x0;
  }
  const inv = 1 / 255;
  for (let y = 0; y < newH; ++y) {
    const fy = Math.max((y + 0.5) * sy - 0.5, 0);
    const y0 = Math.min(Math.floor(fy), height - 1), y1 = Math.min(y0 + 1, height - 1);
    const wy = fy - y0;
    const r0 = y0 * width * 3, r1 = y1 * width * 3;
    const o = (y + top) * netW + left;
    for (let x = 0; x < newW; ++x) {
      const a = r0 + cx0[x], b = r0 + cx1[x], c = r1 + cx0[x], d = r1 + cx1[x], wx = cwx[x];
      for (let ch = 0; ch < 3; ++ch) {
        const t = rgb[a + ch] + (rgb[b + ch] - rgb[a + ch]) * wx;
        const u = rgb[c + ch] + (rgb[d + ch] - rgb[c + ch]) * wx;
        data[ch * plane + o + x] = Math.round(t + (u - t) * wy) * inv;
      }
    }
  }
  return {tensor: new ort.Tensor('float32', data, [1, 3, netH, netW]), r, top, left};
}

function iou(a, b) {
  const w = Math.min(a[2], b[2]) - Math.max(a[0], b[0]), h = Math.min(a[3], b[3]) - Math.max(a[1], b[1]);
  if (w <= 0 || h <= 0) return 0;
  const inter = w * h;
  return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter);
}

// Decode (1, 4+nc, A), best class per anchor, class-aware greedy NMS, scale back to the image and clip.
function postprocess(output, lb, image, conf = 0.25, iouThreshold = 0.7, maxDet = 300) {
  const [, rows, anchors] = output.dims;
  const out = output.data, nc = rows - 4;
  const candidates = [];
  for (let a = 0; a < anchors; ++a) {
    let best = -1, cls = 0;
    for (let c = 0; c < nc; ++c) {
      const s = out[(4 + c) * anchors + a];
      if (s > best) { best = s; cls = c; }
    }
    if (best <= conf) continue;
    const cx = out[a], cy = out[anchors + a], w = out[2 * anchors + a], h = out[3 * anchors + a];
    candidates.push({score: best, cls, box: [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]});
  }
  candidates.sort((p, q) => q.score - p.score);
  const kept = [];
  for (const cand of candidates) {
    if (kept.length === maxDet) break;
    if (kept.some((k) => k.cls === cand.cls && iou(k.box, cand.box) > iouThreshold)) continue;
    kept.push(cand);
  }
  for (const k of kept) {
    k.box = k.box.map((v, i) => {
      const u = (v - (i % 2 ? lb.top : lb.left)) / lb.r;
      return Math.min(Math.max(u, 0), i % 2 ? image.height : image.width);
    });
  }
  return kept;
}

function median(values) {
  const s = [...values].sort((a, b) => a - b), n = s.length;
  return n % 2 ? s[(n - 1) / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
}

async function main() {
  const [model, threads = '2', rounds = '5', ...images] = process.argv.slice(2);
  if (!model || images.length === 0) {
    console.error('usage: ORT_NODE_MODULES=DIR node bench/ort_yolo.mjs MODEL.onnx THREADS ROUNDS IMAGE.ppm...');
    process.exit(2);
  }
  const session = await ort.InferenceSession.create(model, {
    intraOpNumThreads: Number(threads), interOpNumThreads: 1, executionMode: 'sequential',
    graphOptimizationLevel: 'all',
  });
  const inputName = session.inputNames[0];
  // The network input [h, w]: a static export's own size (IMGSZ=480,640 for a 480x640 export).
  const [netH, netW] = (process.env.IMGSZ || '640,640').split(',').map(Number);
  const total = [], pre = [], run = [], post = [], detections = {};
  for (let round = -1; round < Number(rounds); ++round) {
    for (const file of images) {
      const t0 = performance.now();
      const image = readPpm(file);
      const lb = letterbox(image, netH, netW);
      const t1 = performance.now();
      const result = await session.run({[inputName]: lb.tensor});
      const t2 = performance.now();
      const kept = postprocess(result[session.outputNames[0]], lb, image);
      const t3 = performance.now();
      if (round < 0) continue;  // warm-up pass
      total.push(t3 - t0); pre.push(t1 - t0); run.push(t2 - t1); post.push(t3 - t2);
      detections[file] = kept.length;
    }
  }
  console.log(JSON.stringify({
    engine: `onnxruntime-node ${require('onnxruntime-node/package.json').version}`,
    model, threads: Number(threads), rounds: Number(rounds), images: images.length, imgsz: [netH, netW],
    ms_per_image: median(total), letterbox_ms: median(pre), run_ms: median(run), postprocess_ms: median(post),
    detections,
  }));
}
main().catch((e) => {
  console.error(e);
  process.exit(1);
});
