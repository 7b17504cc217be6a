// Downloading a model folder from the Hugging Face hub (`mmfuse pull`).
//
// The endpoint is $HF_ENDPOINT (default https://huggingface.co); $HF_TOKEN, when set, is
// sent as "Authorization: Bearer ..." to the endpoint (never to the hosts it redirects to,
// and never printed). The file list comes from GET {endpoint}/api/models/{repo}/revision/
// {revision}?blobs=true; when that route answers a plain 404 (a mirror without the API)
// a fixed list of the files a model folder needs is tried instead. Files are fetched from
// {endpoint}/{repo}/resolve/{commit}/{file} (the revision pinned to the commit the API
// reports), following redirects, into DIR/FILE.incomplete, which is renamed to DIR/FILE
// once its size and checksum (LFS sha256, or the git blob id of small files) are right.
// A leftover .incomplete is resumed with an HTTP Range request; transient failures (5xx,
// 429, dropped connections) are retried with back-off a bounded number of times.
#pragma once

#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mmfuse::hub {

enum class FileStatus {
  downloaded,  // fetched from the start
  present,     // already in DIR with the right size and checksum
  resumed,     // completed from a partial .incomplete file by a Range request
};

const char* to_string(FileStatus status) noexcept;

struct PulledFile {
  std::string name;  // path relative to the repository root, '/'-separated
  std::uint64_t size = 0;
  FileStatus status = FileStatus::downloaded;
};

// Receives progress while pull() runs; every method has a do-nothing default.
class PullObserver {
 public:
  virtual ~PullObserver() = default;
  // A transfer of `name` begins at byte `offset` (non-zero when resuming); `total` is the
  // full size when known.
  virtual void file_started(const std::string& name, std::uint64_t offset,
                            std::optional<std::uint64_t> total) {}
  // `done` bytes of `name` are on disk (counting a resumed prefix).
  virtual void file_progress(const std::string& name, std::uint64_t done,
                             std::optional<std::uint64_t> total) {}
  virtual void file_finished(const PulledFile& file) {}
  // Something worth telling a person: a retry, a skipped file, a missing weight file.
  virtual void warning(const std::string& message) {}
};

struct PullOptions {
  std::string repo;                  // "org/name" or "name"
  std::string revision = "main";     // branch, tag or commit
  std::filesystem::path dir;         // empty: default_dir(repo)
  std::vector<std::string> include;  // globs over repository paths; empty: model-folder files
  std::string endpoint;              // empty: $HF_ENDPOINT, else https://huggingface.co
  std::optional<std::string> token;  // nullopt: $HF_TOKEN (empty string: no token)
  int max_attempts = 5;              // tries per request for transient failures
  double retry_delay_s = 0.5;        // first back-off; doubles with each retry
  PullObserver* observer = nullptr;
};

struct PullResult {
  std::string repo;
  std::string revision;
  std::string commit;  // the commit the files came from, when the server told us
  std::filesystem::path dir;
  std::vector<PulledFile> files;
};

// Downloads the selected files of opts.repo into the target directory. Messages name
// the option fields ("revision", "include pattern", "destination folder"), never CLI
// flags. Throws
// mmfuse::Error: not_found (repository, revision or file missing), bad_input (bad repo id,
// authentication needed or refused, checksum mismatch, unusable target directory),
// internal (network failure after the retries, disk errors).
PullResult pull(const PullOptions& opts);

// {"repo", "revision", "commit"?, "dir", "files": [{"name", "size", "status"}]}.
nlohmann::ordered_json to_json(const PullResult& result);

// ./models/{repo with '/' replaced by "--"}, e.g. models/openai--clip-vit-base-patch32.
std::filesystem::path default_dir(const std::string& repo);

// Throws bad_input unless `repo` is a hub repository id ("name" or "org/name").
void validate_repo_id(const std::string& repo);

// fnmatch(3) match of a repository path without FNM_PATHNAME: '*' and '?' match any
// characters including '/', "[...]" is a character class, '\' is an ordinary character;
// a pattern ending in '/' matches everything below it.
bool glob_match(std::string_view pattern, std::string_view path);

// Lower-case hex SHA-256 of a file's contents.
std::string sha256_file(const std::filesystem::path& path);

}  // namespace mmfuse::hub
