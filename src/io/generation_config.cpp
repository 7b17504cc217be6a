// generation_config.json over transformers 4.44's GenerationConfig class
// defaults, and the checks GenerationConfig.validate (and the processors'
// constructors) make.
#include "io/generation_config.h"

#include <cmath>
#include <limits>

#include "io/model_folder.h"
#include "mmfuse/error.h"

namespace mmfuse {

namespace {

[[noreturn]] void wrong_type(const std::string& where, const std::string& key, const char* want) {
  throw_error(ErrorKind::bad_input, where + ": \"" + key + "\" must be " + want);
}

int read_int(const nlohmann::json& v, const std::string& where, const std::string& key) {
  if (!v.is_number_integer()) wrong_type(where, key, "an integer");
  const auto wide = v.get<int64_t>();
  if (wide < std::numeric_limits<int>::min() || wide > std::numeric_limits<int>::max())
    wrong_type(where, key, "an integer in the int range");
  return static_cast<int>(wide);
}

float read_float(const nlohmann::json& v, const std::string& where, const std::string& key) {
  if (!v.is_number()) wrong_type(where, key, "a number");
  return static_cast<float>(v.get<double>());
}

bool read_bool(const nlohmann::json& v, const std::string& where, const std::string& key) {
  if (!v.is_boolean()) wrong_type(where, key, "true or false");
  return v.get<bool>();
}

// eos_token_id is an int or a list of ints in HF files.
std::vector<int32_t> read_id_list(const nlohmann::json& v, const std::string& where,
                                  const std::string& key) {
  std::vector<int32_t> ids;
  if (v.is_array()) {
    for (const auto& item : v) ids.push_back(read_int(item, where, key));
  } else {
    ids.push_back(read_int(v, where, key));
  }
  return ids;
}

std::vector<std::string> read_strings(const nlohmann::json& v, const std::string& where,
                                      const std::string& key) {
  std::vector<std::string> out;
  if (v.is_string()) return {v.get<std::string>()};
  if (!v.is_array()) wrong_type(where, key, "a string or a list of strings");
  for (const auto& item : v) {
    if (!item.is_string()) wrong_type(where, key, "a string or a list of strings");
    out.push_back(item.get<std::string>());
  }
  return out;
}

EarlyStopping read_early_stopping(const nlohmann::json& v, const std::string& where) {
  if (v.is_boolean()) return v.get<bool>() ? EarlyStopping::always : EarlyStopping::heuristic;
  if (v.is_string() && v.get<std::string>() == "never") return EarlyStopping::never;
  wrong_type(where, "early_stopping", "true, false or \"never\"");
}

// A null value means "None" in HF: the processor or limit it controls is off.
void apply_null(GenerationConfig& c, const std::string& key) {
  const GenerationConfig defaults;
  if (key == "max_new_tokens")
    c.max_new_tokens.reset();
  else if (key == "min_new_tokens")
    c.min_new_tokens = 0;
  else if (key == "min_length")
    c.min_length = 0;
  else if (key == "temperature")
    c.temperature = 1.0f;
  else if (key == "top_k")
    c.top_k = 0;
  else if (key == "top_p")
    c.top_p = 1.0f;
  else if (key == "min_p")
    c.min_p.reset();
  else if (key == "repetition_penalty")
    c.repetition_penalty = 1.0f;
  else if (key == "no_repeat_ngram_size")
    c.no_repeat_ngram_size = 0;
  else if (key == "num_beams")
    c.num_beams = 1;
  else if (key == "seed")
    c.seed.reset();
  else if (key == "eos_token_id")
    c.eos_token_ids.clear();
  else if (key == "pad_token_id")
    c.pad_token_id = -1;
  else if (key == "bos_token_id")
    c.bos_token_id = -1;
  else if (key == "decoder_start_token_id")
    c.decoder_start_token_id = -1;
  else if (key == "stop_strings")
    c.stop_strings.clear();
  // Others (max_length, do_sample, ...) keep their value: None is not meaningful for them.
}

}  // namespace

void apply_generation_json(GenerationConfig& c, const nlohmann::json& fields,
                           const std::string& where) {
  MMFUSE_CHECK(fields.is_object(), bad_input, where + ": expected a JSON object");
  for (const auto& [key, v] : fields.items()) {
    if (v.is_null()) {
      apply_null(c, key);
      continue;
    }
    if (key == "max_new_tokens")
      c.max_new_tokens = read_int(v, where, key);
    else if (key == "max_length")
      c.max_length = read_int(v, where, key);
    else if (key == "min_new_tokens")
      c.min_new_tokens = read_int(v, where, key);
    else if (key == "min_length")
      c.min_length = read_int(v, where, key);
    else if (key == "do_sample")
      c.do_sample = read_bool(v, where, key);
    else if (key == "num_beams")
      c.num_beams = read_int(v, where, key);
    else if (key == "num_return_sequences")
      c.num_return_sequences = read_int(v, where, key);
    else if (key == "length_penalty")
      c.length_penalty = read_float(v, where, key);
    else if (key == "early_stopping")
      c.early_stopping = read_early_stopping(v, where);
    else if (key == "temperature")
      c.temperature = read_float(v, where, key);
    else if (key == "top_k")
      c.top_k = read_int(v, where, key);
    else if (key == "top_p")
      c.top_p = read_float(v, where, key);
    else if (key == "min_p")
      c.min_p = read_float(v, where, key);
    else if (key == "repetition_penalty")
      c.repetition_penalty = read_float(v, where, key);
    else if (key == "no_repeat_ngram_size")
      c.no_repeat_ngram_size = read_int(v, where, key);
    else if (key == "seed") {
      if (!v.is_number_unsigned()) wrong_type(where, key, "a non-negative integer");
      c.seed = v.get<uint64_t>();
    } else if (key == "eos_token_id")
      c.eos_token_ids = read_id_list(v, where, key);
    else if (key == "pad_token_id")
      c.pad_token_id = read_int(v, where, key);
    else if (key == "bos_token_id")
      c.bos_token_id = read_int(v, where, key);
    else if (key == "decoder_start_token_id")
      c.decoder_start_token_id = read_int(v, where, key);
    else if (key == "stop_strings")
      c.stop_strings = read_strings(v, where, key);
    // Unknown keys are kept by HF as plain attributes and change nothing here.
  }
}

GenerationConfig load_generation_config(const std::filesystem::path& dir) {
  GenerationConfig config;
  const auto path = dir / "generation_config.json";
  if (!std::filesystem::exists(path)) return config;
  apply_generation_json(config, read_json_file(path), path.string());
  return config;
}

void validate(const GenerationConfig& c) {
  auto fail = [](const std::string& msg) {
    throw_error(ErrorKind::bad_input, "generation config: " + msg);
  };
  if (c.max_new_tokens && *c.max_new_tokens <= 0)
    fail("max_new_tokens must be greater than 0, got " + std::to_string(*c.max_new_tokens));
  if (c.max_length <= 0)
    fail("max_length must be greater than 0, got " + std::to_string(c.max_length));
  if (c.min_length < 0)
    fail("min_length must be non-negative, got " + std::to_string(c.min_length));
  if (c.min_new_tokens < 0)
    fail("min_new_tokens must be non-negative, got " + std::to_string(c.min_new_tokens));
  if (c.num_beams < 1) fail("num_beams must be at least 1, got " + std::to_string(c.num_beams));
  if (c.num_return_sequences < 1)
    fail("num_return_sequences must be at least 1, got " + std::to_string(c.num_return_sequences));
  if (c.num_return_sequences != 1) {
    if (c.num_beams == 1 && !c.do_sample)
      fail("num_return_sequences (" + std::to_string(c.num_return_sequences) +
           ") must be 1 for greedy decoding without beam search");
    if (c.num_beams > 1 && c.num_return_sequences > c.num_beams)
      fail("num_return_sequences (" + std::to_string(c.num_return_sequences) +
           ") must not exceed num_beams (" + std::to_string(c.num_beams) + ")");
  }
  // RepetitionPenaltyLogitsProcessor rejects penalty <= 0 whenever it is built.
  if (!(c.repetition_penalty > 0.0f))
    fail("repetition_penalty must be a strictly positive number, got " +
         std::to_string(c.repetition_penalty));
  if (!std::isfinite(c.length_penalty)) fail("length_penalty must be a finite number");
  // The warpers are built (and check their arguments) only when sampling.
  if (c.do_sample) {
    if (!(c.temperature > 0.0f))
      fail("temperature must be strictly positive when do_sample is true, got " +
           std::to_string(c.temperature));
    if (c.top_k < 0) fail("top_k must be non-negative, got " + std::to_string(c.top_k));
    if (!(c.top_p >= 0.0f)) fail("top_p must be in [0, 1], got " + std::to_string(c.top_p));
    if (c.min_p && !(*c.min_p >= 0.0f && *c.min_p <= 1.0f))
      fail("min_p must be in [0, 1], got " + std::to_string(*c.min_p));
  }
  for (const auto& s : c.stop_strings)
    if (s.empty()) fail("stop_strings must not contain an empty string");
}

}  // namespace mmfuse
