// ONNX Runtime peer for `mmfuse bench --dtype`: times an ONNX CLIP vision tower
// (bench/onnx_clip_vision.py writes the f32 and the quantize_dynamic int8 graph)
// with onnxruntime-node on the CPU, all graph optimisations on (ORT fuses the
// int8 pattern into DynamicQuantizeMatMul).
//
//   NODE_PATH=DIR/node_modules node bench/ort_clip_vision.js MODEL.onnx THREADS BATCH ITERATIONS
// Prints {"image_ms_per_item", "load_ms", "threads", "batch", "engine"}.
'use strict';
const ort = require('onnxruntime-node');

async function main() {
  const [model, threads = '1', batch = '1', iterations = '10'] = process.argv.slice(2);
  const t = Number(threads), b = Number(batch), n = Number(iterations);
  const t0 = performance.now();
  const session = await ort.InferenceSession.create(model, {
    intraOpNumThreads: t,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
  });
  const loadMs = performance.now() - t0;
  const side = 224;
  const data = new Float32Array(b * 3 * side * side);
  let seed = 1;
  for (let i = 0; i < data.length; ++i) {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    data[i] = seed / 1073741824 - 1;
  }
  const feeds = {pixel_values: new ort.Tensor('float32', data, [b, 3, side, side])};
  for (let i = 0; i < 2; ++i) await session.run(feeds);
  const times = [], cpu = [];
  for (let i = 0; i < n; ++i) {
    const s = performance.now(), c = process.cpuUsage();
    await session.run(feeds);
    times.push(performance.now() - s);
    const d = process.cpuUsage(c);
    cpu.push((d.user + d.system) / 1000);
  }
  const med = (v) => {
    v.sort((x, y) => x - y);
    return n % 2 ? v[(n - 1) / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
  };
  const median = med(times);
  console.log(JSON.stringify({
    image_ms_per_item: median / b,
    image_cpu_ms_per_item: med(cpu) / b,
    load_ms: loadMs,
    threads: t,
    batch: b,
    engine: `onnxruntime-node ${require('onnxruntime-node/package.json').version}`,
  }));
}
main().catch((e) => {
  console.error(e);
  process.exit(1);
});
