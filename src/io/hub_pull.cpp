#include "io/hub_pull.h"

#include <curl/curl.h>
#include <fnmatch.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <thread>
#include <utility>

#include "core/strings.h"
#include "io/digest.h"
#include "mmfuse/error.h"

namespace mmfuse::hub {

namespace fs = std::filesystem;

const char* to_string(FileStatus status) noexcept {
  switch (status) {
    case FileStatus::downloaded: return "downloaded";
    case FileStatus::present: return "present";
    case FileStatus::resumed: return "resumed";
  }
  return "downloaded";
}

namespace {

constexpr const char* kDefaultEndpoint = "https://huggingface.co";
constexpr const char* kUserAgent = "mmfuse/0.1.0";
constexpr std::size_t kMaxBufferedBody = 64 * 1024;
constexpr double kMaxRetryDelayS = 30.0;

// The files a model folder needs, tried one by one when the endpoint has no model API.
const std::vector<std::string> kModelFolderFiles = {
    "config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.json",
    "merges.txt",
    "vocab.txt",
    "tokenizer.model",
    "special_tokens_map.json",
    "preprocessor_config.json",
    "model.safetensors",
};
constexpr const char* kIndexFile = "model.safetensors.index.json";

bool starts_with(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && s.compare(0, prefix.size(), prefix) == 0;
}
bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string trim(std::string_view s) {
  std::size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return std::string(s.substr(b, e - b));
}

bool is_hex(std::string_view s, std::size_t len) {
  return s.size() == len && std::all_of(s.begin(), s.end(), [](char c) {
           return std::isxdigit(static_cast<unsigned char>(c)) != 0;
         });
}

// An ETag as a bare lower-case value: no W/ prefix, no quotes.
std::string etag_value(std::string tag) {
  tag = trim(tag);
  if (starts_with(tag, "W/")) tag = tag.substr(2);
  if (tag.size() >= 2 && tag.front() == '"' && tag.back() == '"')
    tag = tag.substr(1, tag.size() - 2);
  return ascii_lower(tag);
}

std::optional<std::uint64_t> parse_u64(std::string_view s) {
  std::string t = trim(s);
  if (t.empty() || t.size() > 19) return std::nullopt;
  std::uint64_t v = 0;
  for (char c : t) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<std::uint64_t>(c - '0');
  }
  return v;
}

// ---------------------------------------------------------------------------------------
// Hashing (io/digest).

// Feeds the first `limit` bytes of `path` (all of it when nullopt) into `digest`.
void digest_file(Digest& digest, const fs::path& path, std::optional<std::uint64_t> limit) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr)
    throw_error(ErrorKind::internal, "cannot read " + path.string() + ": " + std::strerror(errno));
  std::vector<char> buf(1 << 20);
  std::uint64_t left = limit.value_or(UINT64_MAX);
  while (left > 0) {
    std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(buf.size(), left));
    std::size_t got = std::fread(buf.data(), 1, want, f);
    if (got == 0) break;
    digest.update(buf.data(), got);
    left -= got;
  }
  bool failed = std::ferror(f) != 0;
  std::fclose(f);
  if (failed) throw_error(ErrorKind::internal, "cannot read " + path.string());
}

// The git blob id of a file: sha1("blob <size>\0" + contents), what the hub reports for
// files not stored in LFS.
std::string git_blob_id(const fs::path& path) {
  Digest d = Digest::sha1();
  std::string header = "blob " + std::to_string(fs::file_size(path));
  d.update(header.data(), header.size() + 1);  // with the terminating NUL
  digest_file(d, path, std::nullopt);
  return d.hex();
}

// ---------------------------------------------------------------------------------------
// URLs.

std::string percent_encode(std::string_view s, bool keep_slash) {
  static const char* digits = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~' ||
        (keep_slash && c == '/')) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += digits[c >> 4];
      out += digits[c & 15];
    }
  }
  return out;
}

// A repository path is safe to join to the target directory: relative, no "." or ".."
// components, no empty components, no backslashes or control characters.
bool safe_repo_path(std::string_view name) {
  if (name.empty() || name.size() > 4096) return false;
  std::size_t start = 0;
  while (true) {
    std::size_t slash = name.find('/', start);
    std::string_view part =
        name.substr(start, slash == std::string_view::npos ? name.npos : slash - start);
    if (part.empty() || part == "." || part == "..") return false;
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  return std::none_of(name.begin(), name.end(), [](char c) {
    return c == '\\' || static_cast<unsigned char>(c) < 0x20 || c == 0x7f;
  });
}

// ---------------------------------------------------------------------------------------
// HTTP over libcurl.

void ensure_curl_initialised() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
      throw_error(ErrorKind::internal, "libcurl: global initialisation failed");
  });
}

struct Response {
  CURLcode code = CURLE_OK;
  std::string curl_error;
  long status = 0;
  // Headers of the last response in the redirect chain (curl_easy_header).
  std::optional<std::uint64_t> content_length;
  std::string content_range;
  std::string retry_after;
  std::string error_code;     // X-Error-Code (RepoNotFound, RevisionNotFound, GatedRepo...)
  std::string error_message;  // X-Error-Message
  // Headers from anywhere along the chain; the first one seen wins. The hub sends them on
  // its own response (a 302 to the CDN for LFS files), not on the CDN's.
  std::string linked_etag;
  std::string linked_size;
  std::string etag;
  std::string repo_commit;
  std::string body;  // the body when it did not go to a file (capped)
};

enum class BodyTarget { buffer, file, abort };

// Per-request hooks: where the body of the final response goes.
struct BodyHooks {
  std::function<BodyTarget(const Response&)> start;    // called before the first byte
  std::function<bool(const char*, std::size_t)> data;  // false aborts the transfer
};

struct TransferState {
  CURL* curl = nullptr;
  Response* response = nullptr;
  BodyHooks* hooks = nullptr;
  bool started = false;
  BodyTarget target = BodyTarget::buffer;
  std::exception_ptr error;  // thrown by a hook; rethrown once libcurl has returned
};

// The value of header `name` in response `request` of the redirect chain (-1: the
// latest), trimmed; empty when absent.
std::string header_value(CURL* curl, const char* name, int request) {
  curl_header* h = nullptr;
  if (curl_easy_header(curl, name, 0, CURLH_HEADER, request, &h) != CURLHE_OK || h == nullptr)
    return "";
  return trim(h->value);
}

// Status and headers of the latest response in the chain (libcurl keeps them).
void read_latest_headers(CURL* curl, Response& r) {
  long status = 0;
  if (curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status) == CURLE_OK && status != 0)
    r.status = status;
  r.content_length = parse_u64(header_value(curl, "Content-Length", -1));
  r.content_range = header_value(curl, "Content-Range", -1);
  r.retry_after = header_value(curl, "Retry-After", -1);
  r.error_code = header_value(curl, "X-Error-Code", -1);
  r.error_message = header_value(curl, "X-Error-Message", -1);
}

// Headers that count from anywhere along the redirect chain, the first one seen winning.
void read_chain_headers(CURL* curl, Response& r) {
  long redirects = 0;
  curl_easy_getinfo(curl, CURLINFO_REDIRECT_COUNT, &redirects);
  for (int request = 0; request <= static_cast<int>(redirects); ++request) {
    for (auto [name, value] :
         {std::pair{"X-Linked-Etag", &r.linked_etag}, std::pair{"X-Linked-Size", &r.linked_size},
          std::pair{"ETag", &r.etag}, std::pair{"X-Repo-Commit", &r.repo_commit}})
      if (value->empty()) *value = header_value(curl, name, request);
  }
}

// libcurl callbacks must not throw: this wrapper parks the exception in the state.
std::size_t handle_body(TransferState* st, char* data, std::size_t n);

std::size_t on_body(char* data, std::size_t size, std::size_t count, void* user) {
  auto* st = static_cast<TransferState*>(user);
  try {
    return handle_body(st, data, size * count);
  } catch (...) {
    st->error = std::current_exception();
    return 0;
  }
}

std::size_t handle_body(TransferState* st, char* data, std::size_t n) {
  if (!st->started) {
    st->started = true;
    read_latest_headers(st->curl, *st->response);  // every header of this response is in
    st->target = (st->hooks != nullptr && st->hooks->start) ? st->hooks->start(*st->response)
                                                            : BodyTarget::buffer;
  }
  switch (st->target) {
    case BodyTarget::file: return st->hooks->data(data, n) ? n : 0;
    case BodyTarget::abort: return 0;
    case BodyTarget::buffer: {
      std::string& body = st->response->body;
      body.append(data, std::min(n, kMaxBufferedBody - std::min(body.size(), kMaxBufferedBody)));
      return n;
    }
  }
  return 0;
}

// (start, total) of a Content-Range header "bytes START-END/TOTAL" or "bytes */TOTAL".
std::pair<std::optional<std::uint64_t>, std::optional<std::uint64_t>> parse_content_range(
    const std::string& value) {
  std::string v = trim(value);
  if (!starts_with(ascii_lower(v), "bytes")) return {};
  v = trim(std::string_view(v).substr(5));
  std::size_t slash = v.find('/');
  if (slash == std::string::npos) return {};
  std::optional<std::uint64_t> total = parse_u64(std::string_view(v).substr(slash + 1));
  std::string range = v.substr(0, slash);
  std::size_t dash = range.find('-');
  std::optional<std::uint64_t> start;
  if (dash != std::string::npos) start = parse_u64(std::string_view(range).substr(0, dash));
  return {start, total};
}

bool transient_curl_error(CURLcode code) {
  switch (code) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_PARTIAL_FILE:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_HTTP3:
    case CURLE_QUIC_CONNECT_ERROR: return true;
    default: return false;
  }
}

bool transient_status(long status) {
  return status == 408 || status == 429 || (status >= 500 && status <= 599 && status != 501);
}

class Http {
 public:
  explicit Http(std::string token) : token_(std::move(token)) {
    ensure_curl_initialised();
    curl_ = curl_easy_init();
    if (curl_ == nullptr) throw_error(ErrorKind::internal, "libcurl: cannot create a handle");
  }
  ~Http() { curl_easy_cleanup(curl_); }
  Http(const Http&) = delete;
  Http& operator=(const Http&) = delete;

  bool has_token() const { return !token_.empty(); }

  // One request, following redirects. `range_from` asks for bytes from there on.
  Response perform(const std::string& url, bool head, std::optional<std::uint64_t> range_from,
                   BodyHooks* hooks, bool json = false) {
    Response r;
    TransferState st;
    st.curl = curl_;
    st.response = &r;
    st.hooks = hooks;
    char errbuf[CURL_ERROR_SIZE] = {0};
    curl_slist* headers = nullptr;
    std::string auth;
    if (!token_.empty()) {
      // libcurl does not forward custom Authorization headers to other hosts on redirects,
      // so the token reaches the endpoint only, not the CDN it redirects to.
      auth = "Authorization: Bearer " + token_;
      headers = curl_slist_append(headers, auth.c_str());
    }
    if (json) headers = curl_slist_append(headers, "Accept: application/json");

    curl_easy_reset(curl_);  // keeps the connection cache
    curl_easy_setopt(curl_, CURLOPT_URL, url.c_str());
    curl_easy_setopt(curl_, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(curl_, CURLOPT_MAXREDIRS, 10L);
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(curl_, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl_, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
#endif
    curl_easy_setopt(curl_, CURLOPT_USERAGENT, kUserAgent);
    curl_easy_setopt(curl_, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl_, CURLOPT_CONNECTTIMEOUT, 30L);
    curl_easy_setopt(curl_, CURLOPT_LOW_SPEED_LIMIT, 1L);  // a stall of 60 s is an error
    curl_easy_setopt(curl_, CURLOPT_LOW_SPEED_TIME, 60L);
    curl_easy_setopt(curl_, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(curl_, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl_, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(curl_, CURLOPT_WRITEDATA, &st);
    if (head) curl_easy_setopt(curl_, CURLOPT_NOBODY, 1L);
    std::string range;
    if (range_from) {
      range = std::to_string(*range_from) + "-";
      curl_easy_setopt(curl_, CURLOPT_RANGE, range.c_str());
    }
    r.code = curl_easy_perform(curl_);
    read_latest_headers(curl_, r);
    read_chain_headers(curl_, r);
    if (r.code != CURLE_OK) r.curl_error = errbuf[0] != 0 ? errbuf : curl_easy_strerror(r.code);
    curl_easy_setopt(curl_, CURLOPT_HTTPHEADER, nullptr);
    curl_slist_free_all(headers);
    if (st.error) std::rethrow_exception(st.error);
    return r;
  }

 private:
  std::string token_;
  CURL* curl_ = nullptr;
};

// ---------------------------------------------------------------------------------------
// The pull itself.

struct Entry {
  std::string name;
  std::optional<std::uint64_t> size;
  std::string sha256;           // lower-case hex, empty when unknown
  std::string git_oid;          // git blob id of a non-LFS file, empty when unknown
  bool may_be_missing = false;  // a guess from the fixed list: a 404 just skips it
};

// One file's download across attempts.
struct Download {
  fs::path part;  // DIR/FILE.incomplete
  std::string url;
  bool used_range = false;         // some bytes came from an earlier attempt or run
  bool restarted_clean = false;    // a resumed file failed verification and was refetched
  std::unique_ptr<Digest> digest;  // sha256 of bytes [0, hashed) of `part`
  std::uint64_t hashed = 0;
};

// What one transfer of a download did.
struct Attempt {
  Response response;
  std::uint64_t offset = 0;  // first byte asked for (0 once a server ignored the Range)
  std::uint64_t done = 0;    // bytes of the file in `part`
  std::optional<std::uint64_t> total;
  bool wrong_range = false;  // a 206 that starts elsewhere
  bool too_long = false;     // more bytes than the listed size
};

class Puller {
 public:
  explicit Puller(const PullOptions& opts);
  PullResult run();

 private:
  std::string resolve_url(const std::string& name) const {
    return endpoint_ + "/" + repo_ + "/resolve/" + percent_encode(ref_, false) + "/" +
           percent_encode(name, true);
  }
  std::string where() const { return repo_ + "@" + revision_; }
  void warn(const std::string& message) {
    if (observer_ != nullptr) observer_->warning(message);
  }

  std::optional<nlohmann::json> fetch_listing();
  std::vector<Entry> plan_from_listing(const nlohmann::json& info, bool& expand_index);
  std::vector<Entry> plan_fixed_list(bool& expand_index);
  std::vector<Entry> shards_of(const fs::path& index_path);

  Response request(const std::string& url, bool head, bool json);
  void sleep_before_retry(int attempt, const Response& r, const std::string& reason,
                          const std::string& url);
  [[noreturn]] void http_failure(const Response& r, const std::string& url,
                                 const std::string& file);

  // One file into DIR, verified; nullopt when a file guessed from the fixed list is not
  // in the repository. Steps: check an existing copy, else download it.
  std::optional<PulledFile> fetch(Entry e);
  enum class LocalCopy { matches, differs, not_upstream };
  // An existing DIR/FILE against the repository's size and checksum (a HEAD request
  // supplies them when no listing did).
  LocalCopy check_local_copy(Entry& e, const fs::path& path);
  bool local_copy_matches(const fs::path& path, const Entry& e);
  // Downloads into FILE.incomplete (resuming it), with retries, verifies it and renames
  // it into place.
  std::optional<PulledFile> download(Entry& e, const fs::path& final_path);
  // One HTTP transfer of the download from byte `offset`; throws on disk errors.
  Attempt transfer(const Entry& e, Download& d, std::uint64_t offset);
  // Size, checksum and commit from a response's headers, where the listing had none.
  void fill_from_headers(Entry& e, const Response& r);
  PulledFile finished(PulledFile pf);  // tells the observer
  void note_commit(const std::string& commit);

  const PullOptions& opts_;
  PullObserver* observer_;
  std::string endpoint_;
  std::string repo_;
  std::string revision_;
  std::string ref_;  // what goes into resolve URLs: the commit once known
  std::string commit_;
  fs::path dir_;
  std::unique_ptr<Http> http_;
  int max_attempts_;
  std::map<std::string, Entry> listed_;  // the API's file list, by name
  bool have_listing_ = false;
};

Puller::Puller(const PullOptions& opts)
    : opts_(opts), observer_(opts.observer), repo_(opts.repo), revision_(opts.revision) {
  validate_repo_id(repo_);
  MMFUSE_CHECK(!revision_.empty() && revision_.size() <= 256 &&
                   std::none_of(revision_.begin(), revision_.end(),
                                [](char c) { return static_cast<unsigned char>(c) < 0x20; }),
               bad_input, "invalid revision '" + revision_ + "'");
  ref_ = revision_;

  endpoint_ = opts.endpoint;
  if (endpoint_.empty()) {
    const char* env = std::getenv("HF_ENDPOINT");
    endpoint_ = (env != nullptr && *env != '\0') ? env : kDefaultEndpoint;
  }
  endpoint_ = trim(endpoint_);
  while (!endpoint_.empty() && endpoint_.back() == '/') endpoint_.pop_back();
  std::string scheme = ascii_lower(endpoint_.substr(0, 8));
  MMFUSE_CHECK(starts_with(scheme, "http://") || starts_with(scheme, "https://"), bad_input,
               "HF_ENDPOINT must be an http:// or https:// URL, got '" + endpoint_ + "'");

  std::string token;
  if (opts.token) {
    token = *opts.token;
  } else if (const char* env = std::getenv("HF_TOKEN"); env != nullptr) {
    token = env;
  }
  token = trim(token);
  MMFUSE_CHECK(std::none_of(token.begin(), token.end(),
                            [](char c) { return static_cast<unsigned char>(c) < 0x20; }),
               bad_input, "HF_TOKEN contains control characters");

  dir_ = opts.dir.empty() ? default_dir(repo_) : opts.dir;
  max_attempts_ = std::max(1, opts.max_attempts);
  http_ = std::make_unique<Http>(token);
}

void Puller::note_commit(const std::string& commit) {
  std::string c = ascii_lower(trim(commit));
  if (commit_.empty() && is_hex(c, 40)) {
    commit_ = c;
    ref_ = c;  // every later file comes from the same commit
  }
}

void Puller::sleep_before_retry(int attempt, const Response& r, const std::string& reason,
                                const std::string& url) {
  double delay = opts_.retry_delay_s * std::pow(2.0, attempt - 1);
  if (auto after = parse_u64(r.retry_after)) delay = static_cast<double>(*after);
  delay = std::clamp(delay, 0.0, kMaxRetryDelayS);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.1f", delay);
  warn(reason + " (" + url + "); retrying in " + buf + " s (attempt " +
       std::to_string(attempt + 1) + " of " + std::to_string(max_attempts_) + ")");
  std::this_thread::sleep_for(std::chrono::duration<double>(delay));
}

// A request whose body is small (API, HEAD), with retries for transient failures.
Response Puller::request(const std::string& url, bool head, bool json) {
  for (int attempt = 1;; ++attempt) {
    Response r = http_->perform(url, head, std::nullopt, nullptr, json);
    bool last = attempt >= max_attempts_;
    if (r.code != CURLE_OK) {
      if (transient_curl_error(r.code) && !last) {
        sleep_before_retry(attempt, r, "network error: " + r.curl_error, url);
        continue;
      }
      throw_error(ErrorKind::internal, "network error for " + url + ": " + r.curl_error);
    }
    if (transient_status(r.status) && !last) {
      sleep_before_retry(attempt, r, "HTTP " + std::to_string(r.status), url);
      continue;
    }
    return r;
  }
}

[[noreturn]] void Puller::http_failure(const Response& r, const std::string& url,
                                       const std::string& file) {
  std::string detail = r.error_message;
  if (detail.empty() && !r.body.empty()) {
    try {
      auto j = nlohmann::json::parse(r.body);
      if (j.is_object() && j.contains("error") && j["error"].is_string())
        detail = j["error"].get<std::string>();
    } catch (const nlohmann::json::exception&) {
    }
  }
  std::string status = "HTTP " + std::to_string(r.status);
  std::string suffix = " (" + status + ", " + url + (detail.empty() ? "" : ": " + detail) + ")";
  std::string private_hint =
      http_->has_token() ? ""
                         : "; if the repository is private or gated, set HF_TOKEN to a Hugging "
                           "Face access token";
  if (r.error_code == "RepoNotFound" || r.error_code == "RevisionNotFound")
    throw_error(ErrorKind::not_found,
                "repository or revision not found: " + where() + suffix + private_hint);
  if (r.error_code == "GatedRepo")
    throw_error(ErrorKind::bad_input,
                repo_ + " is gated: accept its conditions at " + endpoint_ + "/" + repo_ +
                    (http_->has_token() ? " with the account of HF_TOKEN"
                                        : " and set HF_TOKEN to an access token of that account") +
                    suffix);
  if (r.status == 401 || r.status == 403) {
    if (http_->has_token())
      throw_error(ErrorKind::bad_input,
                  "the hub refused HF_TOKEN for " + where() +
                      ": check that the token is valid and can read this repository" + suffix);
    throw_error(ErrorKind::bad_input, "authentication required for " + where() +
                                          ": set HF_TOKEN to a Hugging Face access token" + suffix);
  }
  if (r.status == 404) {
    if (r.error_code == "EntryNotFound" || !file.empty())
      throw_error(ErrorKind::not_found, file + " not found in " + where() +
                                            " (repository or revision not found, or no such "
                                            "file)" +
                                            suffix);
    throw_error(ErrorKind::not_found, "repository or revision not found: " + where() + suffix);
  }
  if (r.status >= 400 && r.status < 500)
    throw_error(ErrorKind::bad_input, "the hub rejected the request for " + where() + suffix);
  throw_error(ErrorKind::internal, "the hub failed for " + where() + suffix);
}

std::optional<nlohmann::json> Puller::fetch_listing() {
  std::string url = endpoint_ + "/api/models/" + repo_ + "/revision/" +
                    percent_encode(revision_, false) + "?blobs=true";
  Response r = request(url, false, true);
  if (r.status == 404 && r.error_code.empty()) {
    warn(endpoint_ + " has no model API (HTTP 404 for " + url +
         "); trying the files a model folder needs");
    return std::nullopt;
  }
  if (r.status != 200) http_failure(r, url, "");
  try {
    auto info = nlohmann::json::parse(r.body);
    if (info.is_object() && info.contains("siblings") && info["siblings"].is_array()) return info;
  } catch (const nlohmann::json::exception&) {
  }
  warn("unexpected answer from " + url + "; trying the files a model folder needs");
  return std::nullopt;
}

std::vector<Entry> Puller::plan_from_listing(const nlohmann::json& info, bool& expand_index) {
  if (info.contains("sha") && info["sha"].is_string()) note_commit(info["sha"].get<std::string>());
  std::vector<Entry> all;
  for (const auto& s : info["siblings"]) {
    if (!s.is_object() || !s.contains("rfilename") || !s["rfilename"].is_string()) continue;
    Entry e;
    e.name = s["rfilename"].get<std::string>();
    MMFUSE_CHECK(safe_repo_path(e.name), bad_input,
                 "refusing to download '" + e.name + "' from " + where() + ": unsafe file name");
    if (s.contains("size") && s["size"].is_number_unsigned())
      e.size = s["size"].get<std::uint64_t>();
    if (s.contains("blobId") && s["blobId"].is_string()) {
      std::string oid = ascii_lower(s["blobId"].get<std::string>());
      if (is_hex(oid, 40)) e.git_oid = oid;
    }
    if (s.contains("lfs") && s["lfs"].is_object()) {
      const auto& lfs = s["lfs"];
      for (const char* key : {"sha256", "oid"}) {
        if (lfs.contains(key) && lfs[key].is_string()) {
          std::string sha = ascii_lower(lfs[key].get<std::string>());
          if (starts_with(sha, "sha256:")) sha = sha.substr(7);
          if (is_hex(sha, 64)) {
            e.sha256 = sha;
            break;
          }
        }
      }
      if (lfs.contains("size") && lfs["size"].is_number_unsigned())
        e.size = lfs["size"].get<std::uint64_t>();
      e.git_oid.clear();  // the blob id of an LFS file is that of its pointer
    }
    listed_[e.name] = e;
    all.push_back(std::move(e));
  }
  have_listing_ = true;

  std::vector<Entry> plan;
  if (!opts_.include.empty()) {
    expand_index = false;  // the listing names the shards; the globs pick them
    for (const Entry& e : all) {
      for (const std::string& g : opts_.include) {
        if (glob_match(g, e.name)) {
          plan.push_back(e);
          break;
        }
      }
    }
    return plan;
  }

  // Default: the top-level files a model folder needs.
  bool has_single = listed_.count("model.safetensors") != 0;
  bool has_index = listed_.count(kIndexFile) != 0;
  std::vector<Entry> weights;
  for (const Entry& e : all) {
    const std::string& n = e.name;
    if (n.find('/') != std::string::npos) continue;
    if (ends_with(n, ".safetensors")) {
      if (has_single ? n == "model.safetensors" : !has_index) weights.push_back(e);
      continue;
    }
    if (n == kIndexFile) {
      if (!has_single) plan.push_back(e);
      continue;
    }
    // Indexes of other weight formats (pytorch_model.bin.index.json...) are of no use.
    if (ends_with(n, ".index.json")) continue;
    if (ends_with(n, ".json") || ends_with(n, ".txt") || ends_with(n, ".model")) plan.push_back(e);
  }
  expand_index = !has_single && has_index;
  if (weights.empty() && !expand_index)
    warn(where() +
         " has no .safetensors weights (mmfuse reads only safetensors); add include "
         "patterns to fetch other files");
  plan.insert(plan.end(), weights.begin(), weights.end());
  return plan;
}

std::vector<Entry> Puller::plan_fixed_list(bool& expand_index) {
  std::vector<std::string> names = kModelFolderFiles;
  names.push_back(kIndexFile);
  std::vector<Entry> plan;
  for (const std::string& n : names) {
    bool wanted = opts_.include.empty();
    for (const std::string& g : opts_.include) wanted = wanted || glob_match(g, n);
    if (wanted) plan.push_back(Entry{n, std::nullopt, "", "", true});
  }
  // Literal names among the include patterns are tried too, since nothing can be listed.
  for (const std::string& g : opts_.include) {
    if (g.find_first_of("*?[") != std::string::npos || ends_with(g, "/")) continue;
    MMFUSE_CHECK(safe_repo_path(g), bad_input, "invalid file name in include pattern '" + g + "'");
    bool known = std::any_of(plan.begin(), plan.end(), [&](const Entry& e) { return e.name == g; });
    if (!known) plan.push_back(Entry{g, std::nullopt, "", "", true});
  }
  expand_index = true;
  return plan;
}

std::vector<Entry> Puller::shards_of(const fs::path& index_path) {
  nlohmann::json index;
  try {
    std::FILE* f = std::fopen(index_path.c_str(), "rb");
    MMFUSE_CHECK(f != nullptr, internal, "cannot read " + index_path.string());
    std::string text;
    char buf[65536];
    std::size_t got;
    while ((got = std::fread(buf, 1, sizeof buf, f)) > 0) text.append(buf, got);
    std::fclose(f);
    index = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw_error(ErrorKind::bad_input, index_path.string() + ": invalid JSON: " + e.what());
  }
  MMFUSE_CHECK(index.is_object() && index.contains("weight_map") && index["weight_map"].is_object(),
               bad_input, index_path.string() + ": no weight_map object");
  std::vector<Entry> shards;
  std::set<std::string> seen;
  for (const auto& [tensor, file] : index["weight_map"].items()) {
    MMFUSE_CHECK(file.is_string(), bad_input,
                 index_path.string() + ": weight_map entry '" + tensor + "' is not a file name");
    std::string name = file.get<std::string>();
    MMFUSE_CHECK(safe_repo_path(name), bad_input,
                 index_path.string() + ": unsafe shard name '" + name + "'");
    if (!seen.insert(name).second) continue;
    if (have_listing_) {
      auto it = listed_.find(name);
      MMFUSE_CHECK(
          it != listed_.end(), not_found,
          std::string(kIndexFile) + " names " + name + ", which " + where() + " does not have");
      shards.push_back(it->second);
    } else {
      shards.push_back(Entry{name, std::nullopt, "", "", false});
    }
  }
  std::sort(shards.begin(), shards.end(),
            [](const Entry& a, const Entry& b) { return a.name < b.name; });
  return shards;
}

bool Puller::local_copy_matches(const fs::path& path, const Entry& e) {
  std::error_code ec;
  std::uint64_t size = fs::file_size(path, ec);
  if (ec || !e.size || size != *e.size) return false;
  if (!e.sha256.empty()) return sha256_file(path) == e.sha256;
  if (!e.git_oid.empty()) return git_blob_id(path) == e.git_oid;
  return true;
}

// A 404 for a file guessed from the fixed list (not a missing repository or revision).
bool missing_upstream(const Entry& e, const Response& r) {
  return r.status == 404 && e.may_be_missing && r.error_code != "RepoNotFound" &&
         r.error_code != "RevisionNotFound";
}

void Puller::fill_from_headers(Entry& e, const Response& r) {
  if (!e.size) e.size = parse_u64(r.linked_size);
  if (e.sha256.empty()) {
    // For LFS files the hub's (X-Linked-)ETag is the sha256 of the contents; for other
    // files it is the git blob id.
    std::string tag = etag_value(!r.linked_etag.empty() ? r.linked_etag : r.etag);
    if (is_hex(tag, 64)) e.sha256 = tag;
  }
  note_commit(r.repo_commit);
}

PulledFile Puller::finished(PulledFile pf) {
  if (observer_ != nullptr) observer_->file_finished(pf);
  return pf;
}

Puller::LocalCopy Puller::check_local_copy(Entry& e, const fs::path& path) {
  MMFUSE_CHECK(fs::is_regular_file(path), bad_input,
               path.string() + " exists and is not a regular file");
  if (!e.size) {  // no listing: ask the server what the file should be
    const std::string url = resolve_url(e.name);
    Response h = request(url, true, false);
    if (missing_upstream(e, h)) return LocalCopy::not_upstream;
    if (h.status != 200) http_failure(h, url, e.name);
    fill_from_headers(e, h);
    if (!e.size) e.size = h.content_length;
  }
  return local_copy_matches(path, e) ? LocalCopy::matches : LocalCopy::differs;
}

std::optional<PulledFile> Puller::fetch(Entry e) {
  const fs::path final_path = dir_ / fs::path(e.name);
  {
    std::error_code ec;
    fs::create_directories(final_path.parent_path(), ec);
    MMFUSE_CHECK(
        !ec, internal,
        "cannot create directory " + final_path.parent_path().string() + ": " + ec.message());
  }
  if (fs::exists(final_path)) {
    switch (check_local_copy(e, final_path)) {
      case LocalCopy::not_upstream: return std::nullopt;
      case LocalCopy::matches:
        return finished({e.name, fs::file_size(final_path), FileStatus::present});
      case LocalCopy::differs:
        warn(e.name + ": the local copy differs from " + where() + "; downloading it again");
        break;
    }
  }
  return download(e, final_path);
}

// The size of the partial file to resume from (0: start afresh, a partial file longer than
// the file is dropped); rehashes that prefix unless the digest already covers it.
std::uint64_t resume_offset(const Entry& e, Download& d) {
  std::uint64_t offset = 0;
  std::error_code ec;
  if (fs::exists(d.part, ec)) {
    offset = fs::file_size(d.part, ec);
    if (ec || (e.size && offset > *e.size)) {
      fs::remove(d.part, ec);
      offset = 0;
    }
  }
  if (!d.digest || d.hashed != offset) {
    d.digest = std::make_unique<Digest>(Digest::sha256());
    d.hashed = 0;
    if (offset > 0) {
      digest_file(*d.digest, d.part, offset);
      d.hashed = offset;
    }
  }
  return offset;
}

Attempt Puller::transfer(const Entry& e, Download& d, std::uint64_t offset) {
  Attempt a;
  a.offset = a.done = offset;
  a.total = e.size;
  std::FILE* out = nullptr;
  bool open_failed = false, write_failed = false;
  int saved_errno = 0;
  BodyHooks hooks;
  hooks.start = [&](const Response& r) {
    if (r.status == 206) {
      auto [start, whole] = parse_content_range(r.content_range);
      if (!start || *start != a.offset) {
        a.wrong_range = true;
        return BodyTarget::abort;
      }
      if (!a.total && whole) a.total = whole;
      out = std::fopen(d.part.c_str(), a.offset > 0 ? "ab" : "wb");
      if (a.offset > 0) d.used_range = true;
    } else if (r.status == 200) {
      if (a.offset > 0)
        warn(e.name + ": the server ignored the Range request; downloading from the start");
      out = std::fopen(d.part.c_str(), "wb");
      a.offset = a.done = 0;
      d.digest = std::make_unique<Digest>(Digest::sha256());
      d.hashed = 0;
      if (!a.total && r.content_length) a.total = r.content_length;
    } else {
      return BodyTarget::buffer;
    }
    if (out == nullptr) {
      open_failed = true;
      saved_errno = errno;
      return BodyTarget::abort;
    }
    if (observer_ != nullptr) observer_->file_started(e.name, a.offset, a.total);
    return BodyTarget::file;
  };
  hooks.data = [&](const char* data, std::size_t n) {
    if (std::fwrite(data, 1, n, out) != n) {
      write_failed = true;
      saved_errno = errno;
      return false;
    }
    d.digest->update(data, n);
    d.hashed += n;
    a.done += n;
    if (e.size && a.done > *e.size) {
      a.too_long = true;
      return false;
    }
    if (observer_ != nullptr) observer_->file_progress(e.name, a.done, a.total);
    return true;
  };

  try {
    a.response =
        http_->perform(d.url, false, offset > 0 ? std::optional(offset) : std::nullopt, &hooks);
  } catch (...) {
    if (out != nullptr) std::fclose(out);  // the partial file stays for a later resume
    throw;
  }
  if (out != nullptr) {
    bool ok = std::fflush(out) == 0;
    if (ok && a.response.code == CURLE_OK) ok = ::fsync(fileno(out)) == 0;
    if (!ok && !write_failed) {
      write_failed = true;
      saved_errno = errno;
    }
    if (std::fclose(out) != 0 && !write_failed) {
      write_failed = true;
      saved_errno = errno;
    }
  }
  if (open_failed || write_failed)
    throw_error(ErrorKind::internal,
                "cannot write " + d.part.string() + ": " + std::strerror(saved_errno));
  return a;
}

// Why the downloaded `actual` bytes are not the file the repository lists ("" when they
// are): size, then sha256 (from the running digest when it covers the file), or git blob id.
std::string verification_problem(const Entry& e, Download& d, std::uint64_t actual) {
  if (e.size && actual != *e.size)
    return "size mismatch: got " + std::to_string(actual) + " bytes, expected " +
           std::to_string(*e.size);
  if (!e.sha256.empty()) {
    std::string got = (d.digest && d.hashed == actual) ? d.digest->hex() : sha256_file(d.part);
    d.digest.reset();
    return got == e.sha256 ? "" : "sha256 mismatch: got " + got + ", expected " + e.sha256;
  }
  if (!e.git_oid.empty()) {
    std::string got = git_blob_id(d.part);
    if (got != e.git_oid) return "git blob id mismatch: got " + got + ", expected " + e.git_oid;
  }
  return "";
}

std::optional<PulledFile> Puller::download(Entry& e, const fs::path& final_path) {
  Download d;
  d.part = final_path;
  d.part += ".incomplete";
  d.url = resolve_url(e.name);
  int attempt = 1;
  for (;;) {
    Attempt a = transfer(e, d, resume_offset(e, d));
    const Response& r = a.response;
    const bool last = attempt >= max_attempts_;
    std::error_code ec;
    if (a.wrong_range || a.too_long) {
      fs::remove(d.part, ec);
      if (last)
        throw_error(ErrorKind::internal,
                    e.name + ": the server " +
                        (a.too_long ? std::string("sent more bytes than the file has")
                                    : std::string("answered the Range request with other bytes")) +
                        " (" + d.url + ")");
      ++attempt;
      continue;
    }
    if (r.code != CURLE_OK) {
      if (transient_curl_error(r.code) && !last) {
        sleep_before_retry(attempt, r, e.name + ": network error: " + r.curl_error, d.url);
        ++attempt;
        continue;
      }
      throw_error(
          ErrorKind::internal,
          "network error downloading " + d.url + ": " + r.curl_error +
              (fs::exists(d.part, ec) ? " (the partial file is kept; run again to resume)" : ""));
    }

    if (r.status == 416 && a.offset > 0) {
      // The partial file may already hold every byte.
      std::optional<std::uint64_t> whole = parse_content_range(r.content_range).second;
      if (whole && *whole != a.offset) {
        fs::remove(d.part, ec);
        if (last) http_failure(r, d.url, e.name);
        ++attempt;
        continue;
      }
      d.used_range = true;
      if (!a.total) a.total = whole ? whole : std::optional(a.offset);
    } else if (r.status == 200 || r.status == 206) {
      if (r.status == 200 && a.done == 0 && !fs::exists(d.part, ec)) {
        // An empty file: the body callback never ran.
        std::FILE* f = std::fopen(d.part.c_str(), "wb");
        MMFUSE_CHECK(f != nullptr, internal, "cannot write " + d.part.string());
        std::fclose(f);
      }
    } else if (missing_upstream(e, r)) {
      return std::nullopt;
    } else if (transient_status(r.status) && !last) {
      sleep_before_retry(attempt, r, e.name + ": HTTP " + std::to_string(r.status), d.url);
      ++attempt;
      continue;
    } else {
      http_failure(r, d.url, e.name);
    }

    fill_from_headers(e, r);
    if (!e.size) e.size = a.total;

    // Verify before the file gets its final name.
    const std::uint64_t actual = fs::file_size(d.part);
    const std::string problem = verification_problem(e, d, actual);
    if (!problem.empty()) {
      fs::remove(d.part, ec);
      d.digest.reset();
      if (d.used_range && !d.restarted_clean) {
        // The old partial file may have been corrupt: one more try from the start.
        warn(e.name + ": " + problem + " after resuming; downloading it again from the start");
        d.restarted_clean = true;
        d.used_range = false;
        continue;
      }
      throw_error(ErrorKind::bad_input, e.name + " from " + where() + " failed verification: " +
                                            problem + " (" + d.url + "); the download was deleted");
    }
    fs::rename(d.part, final_path, ec);
    MMFUSE_CHECK(
        !ec, internal,
        "cannot rename " + d.part.string() + " to " + final_path.string() + ": " + ec.message());
    return finished({e.name, actual, d.used_range ? FileStatus::resumed : FileStatus::downloaded});
  }
}

PullResult Puller::run() {
  {
    std::error_code ec;
    MMFUSE_CHECK(!fs::exists(dir_, ec) || fs::is_directory(dir_, ec), bad_input,
                 "destination folder " + dir_.string() + " exists and is not a directory");
  }
  bool expand_index = false;
  std::optional<nlohmann::json> info = fetch_listing();
  std::vector<Entry> queue =
      info ? plan_from_listing(*info, expand_index) : plan_fixed_list(expand_index);
  if (info && queue.empty()) {
    if (!opts_.include.empty()) {
      std::string globs;
      for (const auto& g : opts_.include) globs += (globs.empty() ? "" : " ") + g;
      throw_error(ErrorKind::not_found,
                  "no file in " + where() + " matches the include patterns " + globs);
    }
    throw_error(ErrorKind::not_found,
                where() +
                    " has none of the files a model folder needs (config.json, "
                    "*.safetensors, tokenizer files); pick files with include patterns");
  }
  {
    std::error_code ec;
    fs::create_directories(dir_, ec);
    MMFUSE_CHECK(!ec, internal,
                 "cannot create destination folder " + dir_.string() + ": " + ec.message());
  }

  PullResult result;
  result.repo = repo_;
  result.revision = revision_;
  result.dir = fs::absolute(dir_).lexically_normal();
  std::set<std::string> queued;
  for (const Entry& e : queue) queued.insert(e.name);
  bool got_single_weights = false;
  for (std::size_t i = 0; i < queue.size(); ++i) {
    Entry e = queue[i];
    // Without a listing, the index is only of interest when model.safetensors is absent.
    if (!have_listing_ && opts_.include.empty() && e.name == kIndexFile && got_single_weights)
      continue;
    std::optional<PulledFile> pf = fetch(e);
    if (!pf) continue;
    result.files.push_back(*pf);
    if (e.name == "model.safetensors") got_single_weights = true;
    if (e.name == kIndexFile && expand_index) {
      for (Entry& shard : shards_of(dir_ / kIndexFile)) {
        if (!opts_.include.empty() &&
            std::none_of(opts_.include.begin(), opts_.include.end(),
                         [&](const std::string& g) { return glob_match(g, shard.name); }))
          continue;
        if (queued.insert(shard.name).second) queue.push_back(std::move(shard));
      }
    }
  }
  if (!have_listing_) {
    if (result.files.empty())
      throw_error(ErrorKind::not_found,
                  "repository or revision not found: " + where() + " (" + endpoint_ +
                      " has no model API and none of the requested files exist)" +
                      (http_->has_token() ? std::string()
                                          : "; if the repository is private or gated, set "
                                            "HF_TOKEN"));
    bool has_weights =
        std::any_of(result.files.begin(), result.files.end(),
                    [](const PulledFile& f) { return ends_with(f.name, ".safetensors"); });
    if (opts_.include.empty() && !has_weights)
      warn(where() + " has neither model.safetensors nor " + kIndexFile);
  }
  result.commit = commit_;
  return result;
}

}  // namespace

PullResult pull(const PullOptions& opts) {
  return Puller(opts).run();
}

nlohmann::ordered_json to_json(const PullResult& result) {
  nlohmann::ordered_json j;
  j["repo"] = result.repo;
  j["revision"] = result.revision;
  if (!result.commit.empty()) j["commit"] = result.commit;
  j["dir"] = result.dir.string();
  j["files"] = nlohmann::ordered_json::array();
  for (const PulledFile& f : result.files)
    j["files"].push_back({{"name", f.name}, {"size", f.size}, {"status", to_string(f.status)}});
  return j;
}

fs::path default_dir(const std::string& repo) {
  std::string flat;
  for (char c : repo) {
    if (c == '/')
      flat += "--";
    else
      flat += c;
  }
  return fs::path("models") / flat;
}

void validate_repo_id(const std::string& repo) {
  auto bad = [&](const std::string& why) {
    throw_error(ErrorKind::bad_input, "invalid repository id '" + repo + "': " + why +
                                          " (expected NAME or ORG/NAME, e.g. "
                                          "openai/clip-vit-base-patch32)");
  };
  std::size_t slash = repo.find('/');
  if (repo.empty()) bad("empty");
  if (slash != std::string::npos && repo.find('/', slash + 1) != std::string::npos)
    bad("more than one '/'");
  std::vector<std::string> parts;
  if (slash == std::string::npos) {
    parts = {repo};
  } else {
    parts = {repo.substr(0, slash), repo.substr(slash + 1)};
  }
  for (const std::string& p : parts) {
    if (p.empty() || p.size() > 96) bad("each part must have 1 to 96 characters");
    for (char c : p) {
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.')
        bad("only letters, digits, '-', '_' and '.' are allowed");
    }
    if (p.front() == '-' || p.front() == '.' || p.back() == '-' || p.back() == '.')
      bad("a part cannot start or end with '-' or '.'");
    if (p.find("--") != std::string::npos || p.find("..") != std::string::npos)
      bad("'--' and '..' are not allowed");
  }
  if (ends_with(repo, ".git")) bad("drop the .git suffix");
}

bool glob_match(std::string_view pattern, std::string_view path) {
  std::string pat(pattern);
  if (!pat.empty() && pat.back() == '/') pat += '*';
  // No FNM_PATHNAME: '*' and '?' match '/' too. FNM_NOESCAPE: '\\' is an ordinary character.
  return ::fnmatch(pat.c_str(), std::string(path).c_str(), FNM_NOESCAPE) == 0;
}

std::string sha256_file(const fs::path& path) {
  Digest d = Digest::sha256();
  digest_file(d, path, std::nullopt);
  return d.hex();
}

}  // namespace mmfuse::hub
