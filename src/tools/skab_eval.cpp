#include "tools/skab_eval.h"

#include <algorithm>
#include <atomic>
#include <thread>
#include <tuple>

#include "mmfuse/error.h"
#include "sensor/csv_source.h"
#include "sensor/time_axis.h"

namespace mmfuse::sensor {

namespace fs = std::filesystem;

OutlierMetrics outlier_metrics(const Confusion& c) {
  OutlierMetrics m;
  const double tp = static_cast<double>(c.tp), tn = static_cast<double>(c.tn);
  const double fp = static_cast<double>(c.fp), fn = static_cast<double>(c.fn);
  m.f1 = tp + fp + fn > 0 ? tp / (tp + (fn + fp) / 2.0) : 0.0;
  m.far = fp + tn > 0 ? fp / (fp + tn) * 100.0 : 0.0;
  m.mar = fn + tp > 0 ? fn / (fn + tp) * 100.0 : 0.0;
  return m;
}

const std::vector<LeaderboardEntry>& skab_leaderboard() {
  static const std::vector<LeaderboardEntry> board = {
      {"Perfect detector", "", 1.0, 0.0, 0.0},
      {"Conv-AE", "", 0.78, 13.55, 28.02},
      {"MSET", "mset", 0.78, 39.73, 14.13},
      {"T-squared+Q (PCA-based)", "pca", 0.76, 26.62, 24.92},
      {"LSTM-AE", "", 0.74, 29.96, 25.92},
      {"T-squared", "t2", 0.66, 19.21, 42.6},
      {"LSTM-VAE", "", 0.56, 9.13, 55.03},
      {"Vanilla LSTM", "", 0.54, 12.54, 59.53},
      {"MSCRED", "", 0.36, 49.94, 69.88},
      {"Vanilla AE", "", 0.39, 2.59, 75.15},
      {"Isolation forest", "iforest", 0.29, 2.56, 82.89},
      {"Null detector", "", 0.0, 0.0, 100.0},
  };
  return board;
}

std::vector<fs::path> find_skab_files(const fs::path& dir) {
  std::error_code ec;
  MMFUSE_CHECK(fs::is_directory(dir, ec), not_found, dir.string() + ": SKAB folder not found");
  std::vector<fs::path> files;
  for (const auto& entry : fs::recursive_directory_iterator(dir, ec)) {
    if (!entry.is_regular_file() || entry.path().extension() != ".csv") continue;
    if (entry.path().string().find("anomaly-free") != std::string::npos) continue;
    files.push_back(entry.path());
  }
  MMFUSE_CHECK(!files.empty(), not_found, dir.string() + ": no SKAB anomaly CSV files found");
  // Folder, then numeric stem (0, 1, 2, ..., 10), then name.
  auto key = [](const fs::path& p) {
    const std::string stem = p.stem().string();
    const bool numeric = !stem.empty() && std::all_of(stem.begin(), stem.end(), ::isdigit);
    return std::make_tuple(p.parent_path().string(), numeric ? std::stol(stem) : -1L, stem);
  };
  std::sort(files.begin(), files.end(),
            [&](const fs::path& a, const fs::path& b) { return key(a) < key(b); });
  return files;
}

SkabResult evaluate_skab(const fs::path& dir, const std::vector<fs::path>& files,
                         const PipelineOptions& options, size_t train_rows, int threads) {
  SkabResult result;
  result.method = options.method;
  result.files.resize(files.size());
  CsvOptions csv;
  csv.reject_bad_rows = true;  // the benchmark files are clean; anything else is an error
  std::vector<std::exception_ptr> errors(files.size());
  auto run_one = [&](size_t i) {
    try {
      const SensorTable table = read_csv(files[i], csv);
      const int label = table.label_index("anomaly");
      MMFUSE_CHECK(label >= 0, bad_input, files[i].string() + ": no 'anomaly' column");
      MMFUSE_CHECK(table.rows() > train_rows, bad_input,
                   files[i].string() + ": only " + std::to_string(table.rows()) + " rows");
      double threshold = 0.0;
      PipelineOptions p = options;  // as `sensor detect` runs on this file
      p.sample_interval_s = sampling_interval_seconds(table.times, train_rows);
      const auto rows = detect_rows(table.channels, table.values, train_rows, p, &threshold);
      SkabFileResult& r = result.files[i];
      r.file = fs::relative(files[i], dir).string();
      r.threshold = threshold;
      for (size_t row = train_rows; row < rows.size(); ++row) {
        const bool truth = table.labels(row, static_cast<size_t>(label)) == 1.0;
        const bool pred = rows[row].anomaly;
        if (truth && pred) ++r.confusion.tp;
        if (!truth && !pred) ++r.confusion.tn;
        if (!truth && pred) ++r.confusion.fp;
        if (truth && !pred) ++r.confusion.fn;
      }
    } catch (...) {
      errors[i] = std::current_exception();
    }
  };
  const size_t workers =
      std::clamp<size_t>(static_cast<size_t>(std::max(threads, 1)), 1, files.size());
  std::vector<std::thread> pool;
  std::atomic<size_t> next{0};
  for (size_t w = 0; w < workers; ++w)
    pool.emplace_back([&] {
      for (size_t i = next++; i < files.size(); i = next++) run_one(i);
    });
  for (auto& t : pool) t.join();
  for (const auto& e : errors)
    if (e) std::rethrow_exception(e);
  for (const auto& f : result.files) result.total += f.confusion;
  result.metrics = outlier_metrics(result.total);
  return result;
}

}  // namespace mmfuse::sensor
