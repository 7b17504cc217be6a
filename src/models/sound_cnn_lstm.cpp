#include "models/sound_cnn_lstm.h"

#include <algorithm>
#include <cmath>

#include "mmfuse/error.h"

namespace mmfuse {

namespace {

int bounded_int(const JsonFields& f, const char* key, int fallback, int lo, int hi) {
  const int64_t v = f.integer(key, fallback);
  MMFUSE_CHECK(v >= lo && v <= hi, bad_input,
               f.where() + ": field \"" + key + "\" must be in [" + std::to_string(lo) + ", " +
                   std::to_string(hi) + "]");
  return static_cast<int>(v);
}

}  // namespace

SoundCnnLstmConfig parse_sound_cnn_lstm_config(const nlohmann::json& j, const std::string& where) {
  MMFUSE_CHECK(j.is_object(), bad_input, where + ": must be a JSON object");
  JsonFields f(j, where);
  const std::string type = f.string("model_type", "");
  MMFUSE_CHECK(type == "sound_cnn_lstm", unsupported,
               where + ": model_type \"" + type + "\" is not sound_cnn_lstm");
  SoundCnnLstmConfig c;
  c.input_dim = bounded_int(f, "input_dim", c.input_dim, 1, 4096);
  if (f.has("conv_channels")) {
    const auto& arr = j["conv_channels"];
    MMFUSE_CHECK(arr.is_array() && !arr.empty() && arr.size() <= 16, bad_input,
                 where + ": field \"conv_channels\" must be a non-empty list (at most 16)");
    c.conv_channels.clear();
    for (const auto& v : arr) {
      MMFUSE_CHECK(v.is_number_integer() && v.get<int64_t>() >= 1 && v.get<int64_t>() <= 4096,
                   bad_input,
                   where + ": field \"conv_channels\" entries must be integers in [1, 4096]");
      c.conv_channels.push_back(v.get<int>());
    }
  }
  c.kernel_size = bounded_int(f, "kernel_size", c.kernel_size, 1, 63);
  MMFUSE_CHECK(
      c.kernel_size % 2 == 1, unsupported,
      where + ": field \"kernel_size\" must be odd (padding kernel_size // 2 keeps the length)");
  c.pool_size = bounded_int(f, "pool_size", c.pool_size, 1, 64);
  c.hidden_dim = bounded_int(f, "hidden_dim", c.hidden_dim, 1, 4096);
  c.num_layers = bounded_int(f, "num_layers", c.num_layers, 1, 16);
  c.bidirectional = f.boolean("bidirectional", c.bidirectional);
  const std::string pooling = f.string("pooling", "last");
  if (pooling == "last")
    c.pooling = SequencePooling::last;
  else if (pooling == "final")
    c.pooling = SequencePooling::final_state;
  else if (pooling == "mean")
    c.pooling = SequencePooling::mean;
  else
    throw_error(ErrorKind::unsupported, where + ": field \"pooling\" must be last, final or mean");
  c.num_classes = bounded_int(f, "num_classes", c.num_classes, 1, 100000);
  if (f.has("labels")) {
    const auto& arr = j["labels"];
    MMFUSE_CHECK(arr.is_array(), bad_input, where + ": field \"labels\" must be a list of strings");
    for (const auto& v : arr) {
      MMFUSE_CHECK(v.is_string(), bad_input,
                   where + ": field \"labels\" must be a list of strings");
      c.labels.push_back(v.get<std::string>());
    }
  } else {
    for (int i = 0; i < c.num_classes; ++i) c.labels.push_back("class_" + std::to_string(i));
  }
  MMFUSE_CHECK(static_cast<int>(c.labels.size()) == c.num_classes, bad_input,
               where + ": field \"labels\" must have num_classes entries");
  c.normal_label = f.string("normal_label", c.labels.front());
  MMFUSE_CHECK(std::find(c.labels.begin(), c.labels.end(), c.normal_label) != c.labels.end(),
               bad_input, where + ": field \"normal_label\" is not one of \"labels\"");
  const std::string standardize = f.string("standardize", "per_clip");
  MMFUSE_CHECK(standardize == "per_clip" || standardize == "none", unsupported,
               where + ": field \"standardize\" must be per_clip or none");
  c.standardize_per_clip = standardize == "per_clip";
  if (f.has("features")) c.features = feature_config_from_json(j["features"], where + " features");
  if (f.has("preprocess"))
    c.preprocess = preprocess_config_from_json(j["preprocess"], where + " preprocess");
  MMFUSE_CHECK(c.features.n_mfcc == c.input_dim, bad_input,
               where + ": features.n_mfcc must equal input_dim");
  MMFUSE_CHECK(c.preprocess.sample_rate == c.features.sample_rate, bad_input,
               where + ": preprocess.sample_rate must equal features.sample_rate");
  return c;
}

std::unique_ptr<SoundCnnLstm> SoundCnnLstm::load(const std::filesystem::path& dir) {
  const std::filesystem::path config_path = dir / "config.json";
  std::unique_ptr<SoundCnnLstm> m(new SoundCnnLstm());
  m->config_ = parse_sound_cnn_lstm_config(read_json_file(config_path), config_path.string());
  m->store_ = WeightStore::open_folder(dir);
  const SoundCnnLstmConfig& c = m->config_;
  WeightStore& store = *m->store_;
  int channels = c.input_dim;
  for (size_t b = 0; b < c.conv_channels.size(); ++b) {
    // nn.Sequential: Conv1d at 3b, ReLU at 3b + 1, MaxPool1d at 3b + 2.
    m->convs_.push_back(load_conv1d(store, "cnn." + std::to_string(3 * b), channels,
                                    c.conv_channels[b], c.kernel_size, c.kernel_size / 2));
    channels = c.conv_channels[b];
  }
  const int directions = c.bidirectional ? 2 : 1;
  for (int l = 0; l < c.num_layers; ++l) {
    m->lstm_.push_back(load_lstm_layer(store, "lstm", l,
                                       l == 0 ? channels : c.hidden_dim * directions, c.hidden_dim,
                                       c.bidirectional));
  }
  const int width = c.hidden_dim * directions;
  m->fc_ = {store.f32("fc.weight", {c.num_classes, width}), store.f32("fc.bias", {c.num_classes}),
            width, c.num_classes, nullptr};
  m->mel_ = std::make_unique<MelExtractor>(c.features);
  m->normal_index_ = static_cast<int>(std::find(c.labels.begin(), c.labels.end(), c.normal_label) -
                                      c.labels.begin());
  return m;
}

size_t SoundCnnLstm::min_frames() const {
  size_t n = 1;
  for (size_t b = 0; b < convs_.size(); ++b) n *= static_cast<size_t>(config_.pool_size);
  return n;
}

std::vector<float> SoundCnnLstm::forward(ThreadPool& pool, const float* x, size_t frames) const {
  MMFUSE_CHECK(frames >= min_frames(), bad_input,
               "sound_cnn_lstm: input of " + std::to_string(frames) +
                   " frames is shorter than the " + std::to_string(min_frames()) +
                   " the pooling layers need");
  std::vector<float> h(x, x + frames * static_cast<size_t>(config_.input_dim));
  size_t t = frames;
  for (const Conv1dWeights& conv : convs_) {
    std::vector<float> y = conv1d(pool, h.data(), t, conv);
    activate(pool, y.data(), y.size(), Activation::relu);
    h = max_pool1d(y.data(), t, static_cast<size_t>(conv.out),
                   static_cast<size_t>(config_.pool_size));
    t /= static_cast<size_t>(config_.pool_size);
  }
  std::vector<float> final_state;
  for (const LstmLayer& layer : lstm_) h = lstm_layer(pool, h.data(), t, layer, &final_state);

  const size_t width = static_cast<size_t>(fc_.in);
  std::vector<float> pooled(width, 0.0f);
  switch (config_.pooling) {
    case SequencePooling::last:
      std::copy(h.end() - static_cast<long>(width), h.end(), pooled.begin());
      break;
    case SequencePooling::final_state: pooled = final_state; break;
    case SequencePooling::mean: {
      for (size_t r = 0; r < t; ++r)
        for (size_t j = 0; j < width; ++j) pooled[j] += h[r * width + j];
      for (float& v : pooled) v /= static_cast<float>(t);
      break;
    }
  }
  std::vector<float> logits(static_cast<size_t>(config_.num_classes));
  linear(pool, pooled.data(), 1, fc_, logits.data());
  return logits;
}

std::vector<float> SoundCnnLstm::features(const std::vector<float>& samples) const {
  std::vector<float> f = mel_->mfcc(samples);
  const size_t dim = static_cast<size_t>(config_.input_dim);
  if (config_.standardize_per_clip) standardize_columns(f.data(), f.size() / dim, dim);
  return f;
}

SoundClassification SoundCnnLstm::classify_samples(ThreadPool& pool,
                                                   const std::vector<float>& samples,
                                                   const std::string& name) const {
  const std::vector<float> f = features(samples);
  const size_t frames = f.size() / static_cast<size_t>(config_.input_dim);
  MMFUSE_CHECK(frames >= min_frames(), bad_input,
               name + ": too short for the classifier (" + std::to_string(frames) +
                   " frames, needs " + std::to_string(min_frames()) + ")");
  SoundClassification out;
  out.logits = forward(pool, f.data(), frames);
  out.probabilities = out.logits;
  kernels::softmax_row(out.probabilities.data(), out.probabilities.size());
  out.index =
      static_cast<int>(std::max_element(out.probabilities.begin(), out.probabilities.end()) -
                       out.probabilities.begin());
  out.label = config_.labels[static_cast<size_t>(out.index)];
  out.anomaly_score = 1.0f - out.probabilities[static_cast<size_t>(normal_index_)];
  out.anomaly = out.index != normal_index_;
  return out;
}

SoundClassification SoundCnnLstm::classify(ThreadPool& pool,
                                           const std::filesystem::path& audio) const {
  return classify_samples(pool, load_audio(audio, config_.preprocess), audio.string());
}

}  // namespace mmfuse
