#include "audio/feature_config.h"

#include "io/model_folder.h"
#include "mmfuse/error.h"

namespace mmfuse {

void FeatureConfig::validate(const std::string& where) const {
  auto field = [&](const char* name) { return where + ": feature field \"" + name + "\" "; };
  MMFUSE_CHECK(sample_rate >= 1000 && sample_rate <= 768000, bad_input,
               field("sample_rate") + "must be in [1000, 768000]");
  MMFUSE_CHECK(pre_emphasis >= 0.0 && pre_emphasis < 1.0, bad_input,
               field("pre_emphasis") + "must be in [0, 1)");
  // The DFT matrix is frame_length x (n_fft + 2) doubles: 4096 bounds it at 134 MB.
  MMFUSE_CHECK(frame_length >= 16 && frame_length <= 4096, bad_input,
               field("frame_length") + "must be in [16, 4096]");
  MMFUSE_CHECK(n_fft >= frame_length && n_fft <= 4096, bad_input,
               field("n_fft") + "must be in [frame_length, 4096]");
  MMFUSE_CHECK(hop_length >= 1 && hop_length <= n_fft, bad_input,
               field("hop_length") + "must be in [1, n_fft]");
  MMFUSE_CHECK(n_mels >= 1 && n_mels <= 1024, bad_input, field("n_mels") + "must be in [1, 1024]");
  MMFUSE_CHECK(
      fmin >= 0.0 && fmax >= 0.0 && fmin < max_frequency() && max_frequency() <= sample_rate / 2.0,
      bad_input, field("fmin") + "/\"fmax\" must satisfy 0 <= fmin < fmax <= sample_rate / 2");
  MMFUSE_CHECK(amin > 0.0 && ref > 0.0, bad_input, field("amin") + "and \"ref\" must be positive");
  MMFUSE_CHECK(top_db >= 0.0, bad_input, field("top_db") + "must be >= 0");
  MMFUSE_CHECK(n_mfcc >= 1 && n_mfcc <= n_mels, bad_input,
               field("n_mfcc") + "must be in [1, n_mels]");
  MMFUSE_CHECK(lifter >= 0.0, bad_input, field("lifter") + "must be >= 0");
}

nlohmann::json feature_config_to_json(const FeatureConfig& c) {
  return {{"sample_rate", c.sample_rate},
          {"pre_emphasis", c.pre_emphasis},
          {"frame_length", c.frame_length},
          {"hop_length", c.hop_length},
          {"n_fft", c.n_fft},
          {"window", "hann_periodic"},
          {"center", c.center},
          {"pad_mode", c.pad_mode == PadMode::reflect ? "reflect" : "constant"},
          {"n_mels", c.n_mels},
          {"fmin", c.fmin},
          {"fmax", c.fmax},
          {"mel_scale", c.mel_scale == MelScale::htk ? "htk" : "slaney"},
          {"mel_norm", c.slaney_norm ? "slaney" : "none"},
          {"power", 2.0},
          {"amin", c.amin},
          {"ref", c.ref},
          {"top_db", c.top_db},
          {"n_mfcc", c.n_mfcc},
          {"dct", "ortho"},
          {"lifter", c.lifter}};
}

FeatureConfig feature_config_from_json(const nlohmann::json& j, const std::string& where) {
  MMFUSE_CHECK(j.is_object(), bad_input, where + ": feature config must be a JSON object");
  JsonFields f(j, where);
  FeatureConfig c;
  auto as_int = [&](const char* key, int fallback) {
    const int64_t v = f.integer(key, fallback);
    MMFUSE_CHECK(v >= -(int64_t{1} << 30) && v <= (int64_t{1} << 30), bad_input,
                 where + ": feature field \"" + key + "\" out of range");
    return static_cast<int>(v);
  };
  c.sample_rate = as_int("sample_rate", c.sample_rate);
  c.pre_emphasis = f.number("pre_emphasis", c.pre_emphasis);
  c.frame_length = as_int("frame_length", c.frame_length);
  c.hop_length = as_int("hop_length", c.hop_length);
  c.n_fft = as_int("n_fft", c.n_fft);
  c.center = f.boolean("center", c.center);
  const std::string pad = f.string("pad_mode", "constant");
  MMFUSE_CHECK(pad == "constant" || pad == "reflect", bad_input,
               where + ": feature field \"pad_mode\" must be constant or reflect");
  c.pad_mode = pad == "reflect" ? PadMode::reflect : PadMode::constant;
  c.n_mels = as_int("n_mels", c.n_mels);
  c.fmin = f.number("fmin", c.fmin);
  c.fmax = f.number("fmax", c.fmax);
  const std::string scale = f.string("mel_scale", "slaney");
  MMFUSE_CHECK(scale == "slaney" || scale == "htk", bad_input,
               where + ": feature field \"mel_scale\" must be slaney or htk");
  c.mel_scale = scale == "htk" ? MelScale::htk : MelScale::slaney;
  const std::string norm = f.string("mel_norm", "slaney");
  MMFUSE_CHECK(norm == "slaney" || norm == "none", bad_input,
               where + ": feature field \"mel_norm\" must be slaney or none");
  c.slaney_norm = norm == "slaney";
  // Fixed parts of the definition: accepted only with the values we compute.
  MMFUSE_CHECK(f.string("window", "hann_periodic") == "hann_periodic", unsupported,
               where + ": feature field \"window\": only hann_periodic is supported");
  MMFUSE_CHECK(f.number("power", 2.0) == 2.0, unsupported,
               where + ": feature field \"power\": only 2.0 (power spectrogram) is supported");
  MMFUSE_CHECK(f.string("dct", "ortho") == "ortho", unsupported,
               where + ": feature field \"dct\": only ortho (DCT-II) is supported");
  c.amin = f.number("amin", c.amin);
  c.ref = f.number("ref", c.ref);
  c.top_db = f.number("top_db", c.top_db);
  c.n_mfcc = as_int("n_mfcc", c.n_mfcc);
  c.lifter = f.number("lifter", c.lifter);
  c.validate(where);
  return c;
}

}  // namespace mmfuse
