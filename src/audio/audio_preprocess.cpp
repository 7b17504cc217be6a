#include "audio/audio_preprocess.h"

#include "audio/resample.h"
#include "io/model_folder.h"
#include "mmfuse/error.h"

namespace mmfuse {

nlohmann::json preprocess_config_to_json(const AudioPreprocessConfig& c) {
  return {{"sample_rate", c.sample_rate},
          {"resampler", "soxr_hq"},
          {"downmix", "mean"},
          {"normalize", to_string(c.normalize)},
          {"normalize_target", c.normalize_target},
          {"trim_silence", c.trim.enabled},
          {"trim_frame_s", c.trim.frame_s},
          {"trim_hop_s", c.trim.hop_s},
          {"trim_threshold_db", c.trim.threshold_db},
          {"trim_min_keep_s", c.trim.min_keep_s},
          {"trim_interior", c.trim.interior},
          {"trim_min_gap_s", c.trim.min_gap_s}};
}

AudioPreprocessConfig preprocess_config_from_json(const nlohmann::json& j,
                                                  const std::string& where) {
  MMFUSE_CHECK(j.is_object(), bad_input, where + ": preprocess config must be a JSON object");
  JsonFields f(j, where);
  AudioPreprocessConfig c;
  const int64_t rate = f.integer("sample_rate", c.sample_rate);
  MMFUSE_CHECK(rate >= 1000 && rate <= 768000, bad_input,
               where + ": field \"sample_rate\" must be in [1000, 768000]");
  c.sample_rate = static_cast<int>(rate);
  c.normalize = parse_normalize_mode(f.string("normalize", to_string(c.normalize)), where);
  c.normalize_target = static_cast<float>(f.number("normalize_target", c.normalize_target));
  MMFUSE_CHECK(c.normalize_target > 0.0f && c.normalize_target <= 1.0f, bad_input,
               where + ": field \"normalize_target\" must be in (0, 1]");
  c.trim.enabled = f.boolean("trim_silence", c.trim.enabled);
  c.trim.frame_s = f.number("trim_frame_s", c.trim.frame_s);
  c.trim.hop_s = f.number("trim_hop_s", c.trim.hop_s);
  c.trim.threshold_db = f.number("trim_threshold_db", c.trim.threshold_db);
  c.trim.min_keep_s = f.number("trim_min_keep_s", c.trim.min_keep_s);
  c.trim.interior = f.boolean("trim_interior", c.trim.interior);
  c.trim.min_gap_s = f.number("trim_min_gap_s", c.trim.min_gap_s);
  MMFUSE_CHECK(c.trim.frame_s > 0.0 && c.trim.frame_s <= 10.0 && c.trim.hop_s > 0.0 &&
                   c.trim.hop_s <= c.trim.frame_s,
               bad_input,
               where + ": fields \"trim_frame_s\"/\"trim_hop_s\" need 0 < hop <= frame <= 10");
  MMFUSE_CHECK(c.trim.threshold_db > 0.0 && c.trim.min_keep_s >= 0.0 && c.trim.min_gap_s >= 0.0,
               bad_input,
               where +
                   ": fields \"trim_threshold_db\" must be > 0, "
                   "\"trim_min_keep_s\"/\"trim_min_gap_s\" >= 0");
  return c;
}

std::vector<float> preprocess_audio(const AudioClip& clip, const AudioPreprocessConfig& config,
                                    const std::string& name) {
  std::vector<float> x = resample_audio(clip.samples, clip.sample_rate, config.sample_rate, name);
  normalize_audio(x, config.normalize, config.normalize_target);
  x = trim_silence(x, config.sample_rate, config.trim);
  MMFUSE_CHECK(!x.empty(), bad_input, name + ": no audio left after resampling");
  return x;
}

std::vector<float> load_audio(const std::filesystem::path& path,
                              const AudioPreprocessConfig& config) {
  return preprocess_audio(decode_audio_file(path), config, path.string());
}

}  // namespace mmfuse
