// Static files: the dashboard (static root) at / and evidence files at
// /evidence/. Paths are canonicalised and must stay inside their root, so
// "..", encoded "..", absolute paths and symlinks out of the root get 404.
// Registered last: the catch-all answers JSON 404 for unknown API paths.
#include <filesystem>
#include <fstream>
#include <iterator>

#include "core/strings.h"
#include "server/http_util.h"
#include "server/server_context.h"

namespace fs = std::filesystem;

namespace mmfuse::server {

namespace {

const char* content_type(const fs::path& p) {
  const std::string ext = ascii_lower(p.extension().string());
  if (ext == ".html" || ext == ".htm") return "text/html; charset=utf-8";
  if (ext == ".js" || ext == ".mjs") return "text/javascript; charset=utf-8";
  if (ext == ".css") return "text/css; charset=utf-8";
  if (ext == ".json" || ext == ".map") return "application/json";
  if (ext == ".svg") return "image/svg+xml";
  if (ext == ".png") return "image/png";
  if (ext == ".jpg" || ext == ".jpeg") return "image/jpeg";
  if (ext == ".webp") return "image/webp";
  if (ext == ".bmp") return "image/bmp";
  if (ext == ".ico") return "image/x-icon";
  if (ext == ".wav") return "audio/wav";
  if (ext == ".csv") return "text/csv";
  if (ext == ".txt") return "text/plain; charset=utf-8";
  if (ext == ".woff2") return "font/woff2";
  return "application/octet-stream";
}

bool is_under(const fs::path& path, const fs::path& root) {
  auto p = path.begin();
  for (auto r = root.begin(); r != root.end(); ++r, ++p)
    if (p == path.end() || *p != *r) return false;
  return true;
}

// The regular file `relative` names inside `root`, or nothing.
std::optional<fs::path> resolve_under(const std::string& root, const std::string& relative) {
  if (root.empty() || relative.find('\0') != std::string::npos) return std::nullopt;
  const fs::path rel(relative);
  if (rel.is_absolute()) return std::nullopt;
  for (const auto& part : rel)
    if (part == "..") return std::nullopt;
  std::error_code ec;
  const fs::path base = fs::canonical(root, ec);
  if (ec) return std::nullopt;
  fs::path file = fs::canonical(base / rel, ec);
  if (ec || !is_under(file, base)) return std::nullopt;
  if (fs::is_directory(file, ec)) file /= "index.html";
  if (!fs::is_regular_file(file, ec)) return std::nullopt;
  return file;
}

void send_file(httplib::Response& res, const fs::path& file, const char* cache) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw_error(ErrorKind::not_found, "cannot read " + file.filename().string());
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  res.set_header("Cache-Control", cache);
  res.set_header("X-Content-Type-Options", "nosniff");
  res.set_content(std::move(bytes), content_type(file));
}

}  // namespace

void add_file_routes(httplib::Server& http, ServerContext& ctx) {
  add_route(
      http, ctx, "GET", "/evidence/(.+)",
      [&ctx](const httplib::Request& req, httplib::Response& res) {
        const std::string root = !ctx.config.evidence_root.empty() ? ctx.config.evidence_root
                                 : !ctx.config.data_dir.empty() ? ctx.config.data_dir + "/evidence"
                                                                : "";
        const auto file = resolve_under(root, req.matches[1]);
        if (!file) throw_error(ErrorKind::not_found, "no evidence file " + req.path);
        send_file(res, *file, "private, max-age=3600");
      },
      false, "evidence");
  add_route(
      http, ctx, "GET", "/(.*)",
      [&ctx](const httplib::Request& req, httplib::Response& res) {
        const std::string rel = req.matches[1];
        if (reject_method(ctx, req, res)) return;
        if (req.path.rfind("/v1/", 0) == 0 || ctx.config.static_root.empty())
          throw_error(ErrorKind::not_found, "no route for GET " + req.path);
        const auto file = resolve_under(ctx.config.static_root, rel.empty() ? "index.html" : rel);
        if (!file) throw_error(ErrorKind::not_found, "no file " + req.path);
        send_file(res, *file,
                  file->filename() == "index.html" ? "no-cache" : "public, max-age=300");
      },
      false, "static");
  // Other methods on unknown paths: 405 where another method exists, else 404.
  for (const char* method : {"POST", "DELETE", "PUT", "PATCH"})
    add_route(
        http, ctx, method, "/(.*)",
        [&ctx](const httplib::Request& req, httplib::Response& res) {
          if (reject_method(ctx, req, res)) return;
          throw_error(ErrorKind::not_found, "no route for " + req.method + " " + req.path);
        },
        false, "unmatched");
}

}  // namespace mmfuse::server
