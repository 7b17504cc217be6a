// The chapter's weighted late fusion (section 6.3.3) and its score-level variant.
// Both sum weight x value over the modalities that produced a result; they
// differ only in the value: the binary decision or the calibrated score.
#include "fusion/fusion.h"

#include <cmath>

#include "mmfuse/error.h"

namespace mmfuse::fusion {

namespace {

using inspect::ModalityStatus;

bool present(const ModalityResult& r) {
  return r.status == ModalityStatus::ok || r.status == ModalityStatus::anomaly;
}

// Shared arithmetic: value(r) is 0/1 for the vote and the score for the score rule.
template <typename Value>
FusionResult weighted_sum(const FusionConfig& config, const std::vector<ModalityResult>& results,
                          Value value) {
  FusionResult out;
  std::array<bool, 4> seen{};
  double best = 0.0;
  for (const ModalityResult& r : results) {
    const size_t m = static_cast<size_t>(r.modality);
    MMFUSE_CHECK(
        !seen[m], bad_input,
        std::string("fusion: modality '") + inspect::modality_name(r.modality) + "' given twice");
    seen[m] = true;
    if (!present(r)) {
      out.missing.push_back(r.modality);
      continue;
    }
    out.present_weight += config.weight(r.modality);
  }
  for (Modality m : inspect::kAllModalities)
    if (!seen[static_cast<size_t>(m)]) out.missing.push_back(m);
  if (out.present_weight <= 0.0) return out;  // nothing voted: no alarm
  const double scale = config.renormalize ? 1.0 / out.present_weight : 1.0;
  for (const ModalityResult& r : results) {
    if (!present(r)) continue;
    const double contribution = config.weight(r.modality) * scale * value(r);
    out.score += contribution;
    if (r.status == ModalityStatus::anomaly && contribution > best) {
      best = contribution;
      out.alarm_type = r.alarm_type.empty() ? inspect::modality_name(r.modality) : r.alarm_type;
    }
  }
  out.score = std::min(1.0, std::max(0.0, out.score));
  // A tiny tolerance so that 0.2 + 0.1 counts as reaching 0.3 (binary sums are exact in intent).
  out.alarm = out.score >= config.threshold - 1e-9;
  if (!out.alarm) out.alarm_type.clear();
  return out;
}

class WeightedVote : public FusionHead {
 public:
  explicit WeightedVote(FusionConfig c) : config_(std::move(c)) {}
  std::string name() const override { return "weighted_vote"; }
  FusionResult fuse(const std::vector<ModalityResult>& results) const override {
    return weighted_sum(config_, results,
                        [](const ModalityResult& r) { return r.decision ? 1.0 : 0.0; });
  }

 private:
  FusionConfig config_;
};

class WeightedScore : public FusionHead {
 public:
  explicit WeightedScore(FusionConfig c) : config_(std::move(c)) {}
  std::string name() const override { return "weighted_score"; }
  FusionResult fuse(const std::vector<ModalityResult>& results) const override {
    return weighted_sum(config_, results, [](const ModalityResult& r) {
      MMFUSE_CHECK(std::isfinite(r.score) && r.score >= 0.0 && r.score <= 1.0, bad_input,
                   std::string("fusion: ") + inspect::modality_name(r.modality) +
                       " score must be in [0, 1]");
      return r.score;
    });
  }

 private:
  FusionConfig config_;
};

}  // namespace

const std::vector<std::string>& fusion_rule_names() {
  static const std::vector<std::string> names = {"weighted_vote", "weighted_score"};
  return names;
}

void validate_fusion_config(const FusionConfig& config, const std::string& where) {
  double sum = 0.0;
  for (Modality m : inspect::kAllModalities) {
    const double w = config.weight(m);
    MMFUSE_CHECK(std::isfinite(w) && w >= 0.0 && w <= 1.0, bad_input,
                 where + ".weights." + inspect::modality_name(m) + ": must be in [0, 1]");
    sum += w;
  }
  MMFUSE_CHECK(sum > 0.0, bad_input, where + ".weights: at least one weight must be > 0");
  MMFUSE_CHECK(std::isfinite(config.threshold) && config.threshold > 0.0 && config.threshold <= 1.0,
               bad_input, where + ".threshold: must be in (0, 1]");
}

std::unique_ptr<FusionHead> make_fusion_head(const FusionConfig& config) {
  validate_fusion_config(config, "fusion");
  if (config.rule == "weighted_vote") return std::make_unique<WeightedVote>(config);
  if (config.rule == "weighted_score") return std::make_unique<WeightedScore>(config);
  if (config.rule == "attention")
    throw_error(ErrorKind::unsupported,
                "fusion.rule: 'attention' (a learned fusion head) needs trained weights, "
                "which this build does not load yet");
  throw_error(ErrorKind::bad_input, "fusion.rule: unknown rule '" + config.rule +
                                        "' (expected weighted_vote or weighted_score)");
}

double calibrate_ratio(double ratio) {
  if (!(ratio > 0.0)) return 0.0;  // also NaN
  if (std::isinf(ratio)) return 1.0;
  return ratio / (1.0 + ratio);
}

}  // namespace mmfuse::fusion
