// The model an index folder was built with: loads it, and refuses a model whose
// weights differ (a vector from another model is meaningless in this index).
#pragma once

#include <memory>
#include <string>

#include "core/precision.h"
#include "index/index_store.h"
#include "models/dual_encoder.h"

namespace mmfuse {

// Settings for a new index built with the model folder `model_dir`.
IndexSettings settings_for_model(const DualEncoder& model, const std::string& model_dir);

// Loads `model_dir` (or, if empty, the folder recorded in the index) and checks
// its fingerprint and dimension against the index. Throws Error(bad_input)
// naming both models when they differ, Error(not_found) when the recorded
// folder is gone and none was given.
std::unique_ptr<DualEncoder> load_index_model(const IndexSettings& settings,
                                              const std::string& index_dir,
                                              const std::string& model_dir,
                                              std::shared_ptr<ThreadPool> pool = nullptr,
                                              Precision precision = Precision::f32);

}  // namespace mmfuse
