#include "tools/nab_eval.h"

#include <algorithm>
#include <atomic>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "mmfuse/error.h"
#include "sensor/csv_source.h"
#include "sensor/time_axis.h"

namespace mmfuse::sensor {

namespace fs = std::filesystem;

namespace {

std::string read_text(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  MMFUSE_CHECK(in.good(), not_found, p.string() + ": cannot open");
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

nlohmann::json read_json(const fs::path& p) {
  try {
    return nlohmann::json::parse(read_text(p));
  } catch (const nlohmann::json::exception& e) {
    throw_error(ErrorKind::bad_input, p.string() + ": not valid JSON: " + e.what());
  }
}

std::vector<NabProfile> read_profiles(const fs::path& p) {
  const nlohmann::json j = read_json(p);
  std::vector<NabProfile> out;
  MMFUSE_CHECK(j.is_object(), bad_input, p.string() + ": expected an object of profiles");
  for (const auto& item : j.items()) {
    // Named, not structured-bound: clang 14 cannot capture a binding in the lambda below.
    const std::string& name = item.key();
    const auto& v = item.value();
    const auto m = v.find("CostMatrix");
    MMFUSE_CHECK(m != v.end() && m->is_object(), bad_input,
                 p.string() + ": profile '" + name + "' has no CostMatrix");
    NabProfile prof;
    prof.name = name;
    auto weight = [&](const char* key) {
      const auto w = m->find(key);
      MMFUSE_CHECK(w != m->end() && w->is_number(), bad_input,
                   p.string() + ": profile '" + name + "': " + key + " missing or not a number");
      return w->get<double>();
    };
    prof.costs = {weight("tpWeight"), weight("fpWeight"), weight("fnWeight"), weight("tnWeight")};
    out.push_back(prof);
  }
  return out;
}

fs::path find_labels(const fs::path& dir) {
  const fs::path labels = dir / "labels";
  std::vector<fs::path> found;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(labels, ec)) {
    const std::string n = e.path().filename().string();
    if (n.rfind("combined_windows", 0) == 0 && e.path().extension() == ".json")
      found.push_back(e.path());
  }
  MMFUSE_CHECK(!found.empty(), not_found,
               labels.string() + ": no combined_windows*.json label file");
  std::sort(found.begin(), found.end());
  return found.front();
}

size_t index_of_time(const NabFile& f, const std::vector<double>& secs, const std::string& when) {
  const std::optional<double> t = parse_time_seconds(when);
  MMFUSE_CHECK(t.has_value(), bad_input, f.name + ": label time '" + when + "' is not a time");
  const auto it = std::find(secs.begin(), secs.end(), *t);
  MMFUSE_CHECK(it != secs.end(), bad_input,
               f.name + ": label time '" + when + "' is not a time stamp of the file");
  return static_cast<size_t>(it - secs.begin());
}

std::string detector_name(const fs::path& dir) {
  fs::path d = dir.lexically_normal();
  if (d.filename().empty()) d = d.parent_path();
  return d.filename().string();
}

std::vector<std::string> split_commas(const std::string& line) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : line) {
    if (c == ',') {
      out.push_back(cur);
      cur.clear();
    } else if (c != '\r') {
      cur += c;
    }
  }
  out.push_back(cur);
  return out;
}

// Runs fn(i) for i in [0, n) on `threads` threads; rethrows the first error.
template <class Fn>
void parallel_for(size_t n, int threads, Fn fn) {
  std::vector<std::exception_ptr> errors(n);
  std::atomic<size_t> next{0};
  const size_t workers = std::clamp<size_t>(static_cast<size_t>(std::max(threads, 1)), 1,
                                            std::max<size_t>(n, 1));
  std::vector<std::thread> pool;
  for (size_t w = 0; w < workers; ++w)
    pool.emplace_back([&] {
      for (size_t i = next++; i < n; i = next++) {
        try {
          fn(i);
        } catch (...) {
          errors[i] = std::current_exception();
        }
      }
    });
  for (auto& t : pool) t.join();
  for (const auto& e : errors)
    if (e) std::rethrow_exception(e);
}

}  // namespace

NabCorpus load_nab_corpus(const fs::path& dir) {
  std::error_code ec;
  MMFUSE_CHECK(fs::is_directory(dir / "data", ec), not_found,
               dir.string() + ": not a NAB folder (no data/)");
  NabCorpus corpus;
  fs::path profiles = dir / "profiles.json";
  if (!fs::exists(profiles, ec)) profiles = dir / "config" / "profiles.json";
  MMFUSE_CHECK(fs::exists(profiles, ec), not_found,
               dir.string() + ": no profiles.json (or config/profiles.json)");
  corpus.profiles = read_profiles(profiles);
  const fs::path label_path = find_labels(dir);
  const nlohmann::json labels = read_json(label_path);
  MMFUSE_CHECK(labels.is_object(), bad_input, label_path.string() + ": expected an object");
  std::vector<fs::path> paths;
  for (const auto& e : fs::recursive_directory_iterator(dir / "data", ec))
    if (e.is_regular_file() && e.path().extension() == ".csv") paths.push_back(e.path());
  MMFUSE_CHECK(!paths.empty(), not_found, (dir / "data").string() + ": no CSV files");
  std::sort(paths.begin(), paths.end());
  CsvOptions csv;
  csv.time_column = "timestamp";
  csv.reject_bad_rows = true;
  for (const auto& p : paths) {
    NabFile f;
    f.name = fs::relative(p, dir / "data").generic_string();
    const auto entry = labels.find(f.name);
    MMFUSE_CHECK(entry != labels.end(), bad_input,
                 label_path.string() + ": no windows for " + f.name);
    const SensorTable t = read_csv(p, csv);
    MMFUSE_CHECK(t.channels.size() == 1, bad_input,
                 p.string() + ": expected the NAB columns timestamp,value");
    f.times = t.times;
    f.values = t.values.data;
    std::vector<double> secs(f.times.size());
    for (size_t i = 0; i < secs.size(); ++i) {
      const auto s = parse_time_seconds(f.times[i]);
      MMFUSE_CHECK(s.has_value(), bad_input,
                   p.string() + ": line " + std::to_string(t.lines[i]) + ": bad time stamp");
      secs[i] = *s;
    }
    for (const auto& w : *entry) {
      MMFUSE_CHECK(w.is_array() && w.size() == 2 && w[0].is_string() && w[1].is_string(),
                   bad_input, label_path.string() + ": " + f.name + ": a window is not [start, end]");
      f.windows.push_back({index_of_time(f, secs, w[0].get<std::string>()),
                           index_of_time(f, secs, w[1].get<std::string>())});
    }
    corpus.files.push_back(std::move(f));
  }
  return corpus;
}

const NabProfile& find_nab_profile(const NabCorpus& corpus, const std::string& name) {
  std::string want = name;
  if (name == "low_fp") want = "reward_low_FP_rate";
  if (name == "low_fn") want = "reward_low_FN_rate";
  for (const auto& p : corpus.profiles)
    if (p.name == want) return p;
  throw_error(ErrorKind::bad_input, "unknown NAB profile '" + name +
                                        "' (standard, low_fp = reward_low_FP_rate, low_fn = "
                                        "reward_low_FN_rate)");
}

NabDetections nab_run_pipeline(const NabCorpus& corpus, const PipelineOptions& options,
                               int threads) {
  NabDetections d;
  d.detector = options.method;
  d.scores.resize(corpus.files.size());
  d.flags.resize(corpus.files.size());
  parallel_for(corpus.files.size(), threads, [&](size_t i) {
    const NabFile& f = corpus.files[i];
    PipelineOptions p = options;
    const size_t train = std::max<size_t>(nab_probation_rows(f.values.size()),
                                          std::min<size_t>(f.values.size(), 2 * p.smooth + 2));
    p.sample_interval_s = sampling_interval_seconds(f.times, train);
    Matrix values(f.values.size(), 1);
    values.data = f.values;
    const auto rows = detect_rows({"value"}, values, train, p);
    for (const auto& r : rows) {
      d.scores[i].push_back(r.score);
      d.flags[i].push_back(r.anomaly ? 1.0 : 0.0);
    }
  });
  return d;
}

NabDetections nab_read_results(const NabCorpus& corpus, const fs::path& dir) {
  NabDetections d;
  d.detector = detector_name(dir);
  CsvOptions csv;
  csv.time_column = "timestamp";
  csv.reject_bad_rows = true;
  for (const auto& f : corpus.files) {
    const fs::path rel(f.name);
    const fs::path p = dir / rel.parent_path() / (d.detector + "_" + rel.filename().string());
    const SensorTable t = read_csv(p, csv);
    const auto col = std::find(t.channels.begin(), t.channels.end(), "anomaly_score");
    MMFUSE_CHECK(col != t.channels.end(), bad_input, p.string() + ": no anomaly_score column");
    MMFUSE_CHECK(t.rows() == f.values.size(), bad_input,
                 p.string() + ": " + std::to_string(t.rows()) + " rows, the data file has " +
                     std::to_string(f.values.size()));
    const size_t c = static_cast<size_t>(col - t.channels.begin());
    std::vector<double> s(t.rows());
    for (size_t r = 0; r < t.rows(); ++r) s[r] = t.values(r, c);
    d.scores.push_back(std::move(s));
  }
  return d;
}

NabResult nab_score(const NabCorpus& corpus, const std::vector<std::vector<double>>& scores,
                    const NabProfile& profile, std::optional<double> threshold,
                    bool rank_normalize) {
  MMFUSE_CHECK(scores.size() == corpus.files.size(), bad_input,
               "NAB scores do not match the corpus files");
  std::vector<std::vector<NabPoint>> per_file(corpus.files.size());
  std::vector<NabPoint> all;
  NabResult r;
  r.profile = profile.name;
  long base = 0;
  for (size_t i = 0; i < corpus.files.size(); ++i) {
    const NabFile& f = corpus.files[i];
    MMFUSE_CHECK(scores[i].size() == f.values.size(), bad_input,
                 f.name + ": " + std::to_string(scores[i].size()) + " scores for " +
                     std::to_string(f.values.size()) + " rows");
    const std::vector<double> s = rank_normalize ? nab_rank_normalize(scores[i]) : scores[i];
    size_t scored = 0;
    per_file[i] = nab_points(s, f.windows, profile.costs, base, &scored);
    base += static_cast<long>(f.windows.size());
    r.windows += f.windows.size();
    r.null_score -= profile.costs.fn * static_cast<double>(scored);
    all.insert(all.end(), per_file[i].begin(), per_file[i].end());
  }
  r.perfect_score = profile.costs.tp * static_cast<double>(r.windows);
  const NabThresholdScore best =
      threshold ? nab_score_at(all, profile.costs, *threshold) : nab_optimize_threshold(all, profile.costs);
  r.threshold = best.threshold;
  r.score = best.score;
  r.tp = best.tp, r.tn = best.tn, r.fp = best.fp, r.fn = best.fn;
  r.normalized = nab_normalized(r.score, r.null_score, r.perfect_score);
  for (size_t i = 0; i < corpus.files.size(); ++i) {
    const NabThresholdScore s = nab_score_at(per_file[i], profile.costs, r.threshold);
    r.files.push_back({corpus.files[i].name, s.score, s.tp, s.tn, s.fp, s.fn});
  }
  return r;
}

NabScoreboardEntry nab_scoreboard_entry(const fs::path& dir, const NabProfile& profile) {
  NabScoreboardEntry e;
  e.detector = detector_name(dir);
  e.profile = profile.name;
  auto totals = [&](const fs::path& p) {
    std::istringstream in(read_text(p));
    std::string line;
    while (std::getline(in, line)) {
      const auto f = split_commas(line);
      if (f.size() >= 5 && f[0] == "Totals") {
        try {
          return std::stod(f[4]);
        } catch (const std::exception&) {
          break;
        }
      }
    }
    throw_error(ErrorKind::bad_input, p.string() + ": no Totals row with a Score");
  };
  const fs::path base = dir.lexically_normal();
  const fs::path parent = (base.filename().empty() ? base.parent_path() : base).parent_path();
  e.total = totals(dir / (e.detector + "_" + profile.name + "_scores.csv"));
  e.null_total = totals(parent / "null" / ("null_" + profile.name + "_scores.csv"));
  MMFUSE_CHECK(e.null_total < 0.0 && profile.costs.fn > 0.0, bad_input,
               "the null detector's total must be negative (one -A_FN per window)");
  const double windows = -e.null_total / profile.costs.fn;
  e.normalized = nab_normalized(e.total, e.null_total, profile.costs.tp * windows);
  return e;
}

}  // namespace mmfuse::sensor
