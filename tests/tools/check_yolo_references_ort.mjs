// Checks the onnxruntime stand-in behind tests/fixtures/yolo against the real ONNX Runtime: every network
// input that Ultralytics' predictor fed the stand-in (make_yolo_references.py --dump DIR) is run through
// onnxruntime-node on the same .onnx file, and the outputs are compared with the stand-in's.
//
//   ORT_NODE_MODULES=DIR node tests/tools/check_yolo_references_ort.mjs DUMP_DIR
// Prints the largest absolute difference per file (box coordinates in input pixels, class scores), over all
// anchors and over the candidates (best score > 0.1); exits 1 when a candidate differs by more than 0.05 px or
// 5e-5. Not run by CI (onnxruntime is not a Debian package).
import {readFileSync} from 'node:fs';
import {createRequire} from 'node:module';
import path from 'node:path';

const modulesDir = process.env.ORT_NODE_MODULES;
const require = createRequire(modulesDir ? path.join(path.resolve(modulesDir), 'x.js') : import.meta.url);
const ort = require('onnxruntime-node');

const f32 = (file) => {
  const b = readFileSync(file);
  return new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4);
};

async function main() {
  const dir = process.argv[2];
  const index = JSON.parse(readFileSync(path.join(dir, 'index.json'), 'utf8'));
  const sessions = new Map();
  const worst = {};
  for (const c of index) {
    if (!sessions.has(c.model)) sessions.set(c.model, await ort.InferenceSession.create(c.model));
    const session = sessions.get(c.model);
    const input = new ort.Tensor('float32', f32(path.join(dir, c.input)), c.input_shape);
    const out = (await session.run({[session.inputNames[0]]: input}))[session.outputNames[0]];
    if (out.dims.join() !== c.output_shape.join()) throw new Error(`${c.model}: output ${out.dims} != ${c.output_shape}`);
    const want = f32(path.join(dir, c.output));
    const anchors = out.dims[2];
    const w = worst[path.basename(c.model)] ??= {cases: 0, box: 0, score: 0, candidate_box: 0, candidate_score: 0};
    w.cases += 1;
    const rows = out.dims[1];
    for (let a = 0; a < anchors; ++a) {
      let best = 0;
      for (let r = 4; r < rows; ++r) best = Math.max(best, want[r * anchors + a]);
      const candidate = best > 0.1;  // boxes that NMS may see at conf >= 0.1
      for (let r = 0; r < rows; ++r) {
        const d = Math.abs(out.data[r * anchors + a] - want[r * anchors + a]);
        const kind = r < 4 ? 'box' : 'score';
        w[kind] = Math.max(w[kind], d);
        if (candidate) w[`candidate_${kind}`] = Math.max(w[`candidate_${kind}`], d);
      }
    }
  }
  console.log(JSON.stringify({onnxruntime: require('onnxruntime-node/package.json').version, files: worst}, null, 1));
  if (Object.values(worst).some((w) => w.candidate_box > 0.05 || w.candidate_score > 5e-5)) process.exit(1);
}
main().catch((e) => {
  console.error(e);
  process.exit(1);
});
