// Late fusion of per-modality inspection results into one alarm decision: the
// chapter's weighted vote (binary decisions x weights, alarm at >= 0.3) and a
// score-level variant, behind a FusionHead interface so that a learned head
// (the chapter's attention fusion, weights from safetensors) can slot in later.
#pragma once

#include <array>
#include <memory>
#include <string>
#include <vector>

#include "record/inspection_record.h"

namespace mmfuse::fusion {

using inspect::Modality;
using inspect::ModalityResult;

struct FusionConfig {
  std::string rule = "weighted_vote";  // "weighted_vote" | "weighted_score"
  // Weights indexed by Modality (camera, infrared, sound, sensors): the chapter's defaults.
  std::array<double, 4> weights = {0.4, 0.3, 0.2, 0.1};
  double threshold = 0.3;  // alarm when the fused score >= threshold
  // false (default): a missing/error modality simply does not vote, the other
  // weights keep their values (the chapter's arithmetic, and the threshold keeps
  // its meaning). true: weights are divided by the sum of the present ones.
  bool renormalize = false;

  double weight(Modality m) const { return weights[static_cast<size_t>(m)]; }
};

struct FusionResult {
  double score = 0.0;             // fused score in [0, 1]
  bool alarm = false;             // score >= threshold (and at least one modality present)
  std::string alarm_type;         // anomalous modality with the largest weighted contribution
  double present_weight = 0.0;    // sum of the configured weights of modalities that voted
  std::vector<Modality> missing;  // modalities with status missing or error
};

// One fusion rule. Implementations are stateless after construction and thread-safe.
class FusionHead {
 public:
  virtual ~FusionHead() = default;
  virtual std::string name() const = 0;
  virtual FusionResult fuse(const std::vector<ModalityResult>& results) const = 0;
};

// Builds the head named by config.rule. "attention" (a learned head) is
// reserved: it needs weights from safetensors and is ErrorKind::unsupported here.
// Unknown names are ErrorKind::bad_input.
std::unique_ptr<FusionHead> make_fusion_head(const FusionConfig& config);
const std::vector<std::string>& fusion_rule_names();

// Checks weights (finite, >= 0, not all 0) and threshold (in (0, 1]); bad_input naming `where`.
void validate_fusion_config(const FusionConfig& config, const std::string& where);

// Maps a detector's score relative to its threshold, r = raw / threshold >= 0,
// to a calibrated score in [0, 1): r / (1 + r), i.e. 0.5 exactly at the threshold.
double calibrate_ratio(double ratio);

}  // namespace mmfuse::fusion
