// Fuzzes the ONNX protobuf reader and, for inputs that parse, the planning of
// the graph by the executor (shape folding, operator checks) on a small input.
#include <cstdint>

#include "io/onnx_model.h"
#include "mmfuse/error.h"
#include "models/onnx_graph.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const mmfuse::OnnxModel m = mmfuse::OnnxModel::parse(data, size, "fuzz.onnx");
    if (m.graph.nodes.size() < 64) mmfuse::OnnxGraphRunner runner(m, {1, 3, 8, 8});
  } catch (const mmfuse::Error&) {
  }
  return 0;
}
