// Scores a demo round against its ground truth: per modality (decision vs the
// modalities the scenario touches) and fused (alarm vs machine fault).
#include <map>

#include "tools/demo.h"

namespace mmfuse::inspect {

double Counts::precision() const {
  return tp + fp == 0 ? 1.0 : static_cast<double>(tp) / (tp + fp);
}
double Counts::recall() const {
  return tp + fn == 0 ? 1.0 : static_cast<double>(tp) / (tp + fn);
}

namespace {
void count(Counts& c, bool truth, bool said) {
  if (truth && said)
    ++c.tp;
  else if (!truth && said)
    ++c.fp;
  else if (truth)
    ++c.fn;
  else
    ++c.tn;
}
}  // namespace

DemoScore score_demo(const std::vector<DemoTruth>& truth, const RoundSummary& round) {
  std::map<std::string, const DeviceOutcome*> by_id;
  for (const DeviceOutcome& o : round.outcomes) by_id[o.device_id] = &o;
  DemoScore s;
  for (const DemoTruth& t : truth) {
    const auto it = by_id.find(t.device);
    if (it == by_id.end()) continue;
    const DeviceOutcome& o = *it->second;
    const bool fault = scenario_is_machine_fault(t.scenario);
    count(s.fused, fault, o.alarm);
    const std::string who = t.device + " (" + scenario_name(t.scenario) + ")";
    if (fault != o.alarm)
      s.mistakes.push_back(who + ": fused " + (o.alarm ? "false alarm" : "missed"));
    const auto mods = scenario_modalities(t.scenario);
    for (const InspectionRecord& rec : o.records)
      for (const ModalityResult& m : rec.modalities) {
        const auto i = static_cast<size_t>(m.modality);
        if (m.status == ModalityStatus::missing) continue;
        if (m.status == ModalityStatus::error) {
          s.mistakes.push_back(who + ": " + modality_name(m.modality) + " error: " + m.message);
          count(s.modality[i], mods[i], false);
          continue;
        }
        count(s.modality[i], mods[i], m.decision);
        if (mods[i] != m.decision)
          s.mistakes.push_back(who + ": " + modality_name(m.modality) +
                               (m.decision ? " false positive" : " missed") + " (" + m.message +
                               ")");
      }
  }
  return s;
}

}  // namespace mmfuse::inspect
