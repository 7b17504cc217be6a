#!/usr/bin/python3
"""A stand-in for the Hugging Face hub, for testing `mmfuse pull` offline.

Standard library only. Serves on 127.0.0.1 on a free port, written to --port-file.

Routes (every route may be prefixed by a "personality"):
  GET  /api/models/{repo}/revision/{rev}      model info JSON (siblings with size, blobId, lfs)
  GET  /{repo}/resolve/{rev}/{file}           the file; LFS files (*.safetensors, *.bin, *.onnx)
  HEAD                                        answer 302 to /cdn-lfs/... like the real hub
  GET  /cdn-lfs/{repo}/{file}                 the "CDN": Range support, its own (md5) ETag

Personalities (a path prefix, so HF_ENDPOINT=http://127.0.0.1:PORT/noapi selects one):
  (none)     the hub
  /noapi     no model API (plain 404 on /api/...), plain 404s without X-Error-Code
  /norange   Range headers are ignored (full 200 answers)

Repositories:
  test-org/tiny-clip     the fixture folder clip-tiny-quickgelu-p32, plus files a model folder
                         does not need (README.md, .gitattributes, pytorch_model.bin,
                         onnx/model.onnx)
  test-org/private-clip  the same, but every request needs "Authorization: Bearer --token"
  test-org/bad-sha       the same, but the advertised sha256 of model.safetensors is wrong
  test-org/flaky-clip    the same, but the first GET of config.json answers 503 and the
                         first GET of model.safetensors drops the connection half-way
  test-org/sharded       a sharded checkpoint (index + 2 shards) plus an unrelated
                         other.safetensors and pytorch_model.bin
"""

import argparse
import hashlib
import json
import os
import re
import sys
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LFS_SUFFIXES = (".safetensors", ".bin", ".onnx")
PERSONALITIES = ("noapi", "norange")


def git_blob_id(data):
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def lfs_pointer(data):
    return ("version https://git-lfs.github.com/spec/v1\noid sha256:%s\nsize %d\n"
            % (hashlib.sha256(data).hexdigest(), len(data))).encode()


class Repo:
    def __init__(self, name, files, private=False, bad_sha=(), flaky=False):
        self.name = name
        self.files = files  # name -> bytes
        self.private = private
        self.bad_sha = set(bad_sha)
        self.flaky = flaky
        self.commit = hashlib.sha1(name.encode()).hexdigest()

    def sha256(self, fname):
        real = hashlib.sha256(self.files[fname]).hexdigest()
        if fname in self.bad_sha:
            return hashlib.sha256(b"not " + real.encode()).hexdigest()
        return real

    def info(self):
        siblings = []
        for fname in sorted(self.files):
            data = self.files[fname]
            entry = {"rfilename": fname, "size": len(data)}
            if fname.endswith(LFS_SUFFIXES):
                entry["blobId"] = git_blob_id(lfs_pointer(data))
                entry["lfs"] = {"sha256": self.sha256(fname), "size": len(data),
                                "pointerSize": len(lfs_pointer(data))}
            else:
                entry["blobId"] = git_blob_id(data)
            siblings.append(entry)
        return {"id": self.name, "modelId": self.name, "sha": self.commit,
                "private": self.private, "siblings": siblings}


def build_repos(fixtures):
    folder = os.path.join(fixtures, "clip", "models", "clip-tiny-quickgelu-p32")
    clip = {}
    for fname in sorted(os.listdir(folder)):
        with open(os.path.join(folder, fname), "rb") as f:
            clip[fname] = f.read()
    extras = {
        "README.md": b"# tiny clip\n",
        ".gitattributes": b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n",
        "pytorch_model.bin": b"pickled weights mmfuse must not fetch\n" * 100,
        "onnx/model.onnx": b"onnx weights\n" * 10,
    }
    tiny = dict(clip, **extras)

    shard1 = bytes(range(256)) * 300
    shard2 = b"second shard" * 1000
    index = {
        "metadata": {"total_size": len(shard1) + len(shard2)},
        "weight_map": {
            "a.weight": "model-00001-of-00002.safetensors",
            "b.weight": "model-00002-of-00002.safetensors",
            "c.weight": "model-00001-of-00002.safetensors",
        },
    }
    sharded = {
        "config.json": b'{"model_type": "clip"}\n',
        "model.safetensors.index.json": json.dumps(index, indent=2).encode(),
        "model-00001-of-00002.safetensors": shard1,
        "model-00002-of-00002.safetensors": shard2,
        "other.safetensors": b"unrelated weights" * 50,
        "pytorch_model.bin": b"pickle" * 50,
        "pytorch_model.bin.index.json": b'{"weight_map": {}}\n',
    }
    repos = [
        Repo("test-org/tiny-clip", tiny),
        Repo("test-org/private-clip", tiny, private=True),
        Repo("test-org/bad-sha", tiny, bad_sha=["model.safetensors"]),
        Repo("test-org/flaky-clip", tiny, flaky=True),
        Repo("test-org/sharded", sharded),
    ]
    return {r.name: r for r in repos}


class Hub:
    def __init__(self, repos, token, log):
        self.repos = repos
        self.token = token
        self.log = log
        self.lock = threading.Lock()
        self.failed_once = set()

    def first_time(self, key):
        with self.lock:
            if key in self.failed_once:
                return False
            self.failed_once.add(key)
            return True


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake-hub/1.0"

    def log_message(self, fmt, *args):
        hub = self.server.hub
        auth = "auth" if self.headers.get("Authorization") else "noauth"
        rng = self.headers.get("Range") or "-"
        hub.log.write("%s %s range=%s %s\n" % (self.command, self.path, rng, auth))
        hub.log.flush()

    # -- helpers -------------------------------------------------------------------------

    def reply(self, status, body=b"", headers=None, content_type="application/json"):
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def error(self, status, message, code=None):
        headers = {}
        if code and self.personality != "noapi":
            headers["X-Error-Code"] = code
            headers["X-Error-Message"] = message
        self.reply(status, json.dumps({"error": message}).encode(), headers)

    def authorised(self, repo):
        if not repo.private:
            return True
        return self.headers.get("Authorization") == "Bearer " + self.server.hub.token

    def serve_bytes(self, data, headers, drop_key=None):
        """Sends data with Range support (unless personality norange)."""
        size = len(data)
        start = 0
        status = 200
        rng = self.headers.get("Range")
        if rng and self.personality != "norange":
            m = re.fullmatch(r"bytes=(\d+)-(\d*)", rng.strip())
            if m:
                start = int(m.group(1))
                end = int(m.group(2)) if m.group(2) else size - 1
                if start >= size:
                    self.reply(416, b"", dict(headers, **{"Content-Range": "bytes */%d" % size}))
                    return
                end = min(end, size - 1)
                data = data[start:end + 1]
                status = 206
                headers = dict(headers, **{"Content-Range": "bytes %d-%d/%d" % (start, end, size)})
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command == "HEAD":
            return
        if drop_key and self.server.hub.first_time(drop_key) and len(data) > 1:
            # Drop the connection half-way through the body.
            self.wfile.write(data[:len(data) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(data)

    # -- routes --------------------------------------------------------------------------

    def route(self):
        hub = self.server.hub
        path = urllib.parse.urlsplit(self.path).path
        parts = [urllib.parse.unquote(p) for p in path.split("/")[1:]]
        self.personality = ""
        if parts and parts[0] in PERSONALITIES:
            self.personality = parts.pop(0)

        # /api/models/{org}/{name}/revision/{rev}
        if parts[:2] == ["api", "models"]:
            if self.personality == "noapi":
                return self.reply(404, b"Not Found", content_type="text/plain")
            rest = parts[2:]
            if "revision" not in rest:
                return self.error(404, "Not Found")
            i = rest.index("revision")
            name, rev = "/".join(rest[:i]), "/".join(rest[i + 1:])
            repo = hub.repos.get(name)
            if repo is None:
                return self.error(404, "Repository not found", "RepoNotFound")
            if not self.authorised(repo):
                return self.error(401, "Invalid credentials in Authorization header")
            if rev not in ("main", repo.commit):
                return self.error(404, "Invalid rev id: " + rev, "RevisionNotFound")
            return self.reply(200, json.dumps(repo.info()).encode())

        # /cdn-lfs/{org}/{name}/{file...}: no auth (a signed URL in real life)
        if parts[:1] == ["cdn-lfs"] and len(parts) >= 4:
            repo = hub.repos.get("/".join(parts[1:3]))
            fname = "/".join(parts[3:])
            if repo is None or fname not in repo.files:
                return self.reply(404, b"NoSuchKey", content_type="text/plain")
            data = repo.files[fname]
            drop = ("drop", repo.name, fname) if (repo.flaky and fname == "model.safetensors"
                                                  and self.command == "GET") else None
            return self.serve_bytes(data, {"ETag": '"%s"' % hashlib.md5(data).hexdigest()}, drop)

        # /{org}/{name}/resolve/{rev}/{file...}
        if len(parts) >= 5 and parts[2] == "resolve":
            repo = hub.repos.get("/".join(parts[:2]))
            rev, fname = parts[3], "/".join(parts[4:])
            if repo is None:
                return self.error(404, "Repository not found", "RepoNotFound")
            if not self.authorised(repo):
                return self.error(401, "Invalid credentials in Authorization header")
            if rev not in ("main", repo.commit):
                return self.error(404, "Invalid rev id: " + rev, "RevisionNotFound")
            if fname not in repo.files:
                return self.error(404, "Entry not found", "EntryNotFound")
            data = repo.files[fname]
            common = {"X-Repo-Commit": repo.commit}
            if repo.flaky and fname == "config.json" and self.command == "GET" and \
                    hub.first_time(("503", repo.name, fname)):
                return self.reply(503, b'{"error": "try again"}', {"Retry-After": "0"})
            if fname.endswith(LFS_SUFFIXES):
                sha = repo.sha256(fname)
                prefix = "/" + self.personality if self.personality else ""
                location = "%s/cdn-lfs/%s/%s?expires=0&signature=x" % (
                    prefix, repo.name, urllib.parse.quote(fname))
                return self.reply(302, b"", dict(common, **{
                    "Location": location,
                    "ETag": '"%s"' % sha,
                    "X-Linked-Etag": '"%s"' % sha,
                    "X-Linked-Size": str(len(data)),
                }))
            return self.serve_bytes(data, dict(common, ETag='"%s"' % git_blob_id(data)))

        return self.error(404, "Not Found")

    def do_GET(self):
        self.route()

    def do_HEAD(self):
        self.route()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("fixtures", help="the tests/fixtures directory")
    ap.add_argument("--port-file", required=True, help="where to write the port once listening")
    ap.add_argument("--token", default="hf_test_token", help="the token private repos accept")
    ap.add_argument("--log", help="request log file (default: stderr)")
    args = ap.parse_args()

    log = open(args.log, "a") if args.log else sys.stderr
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.hub = Hub(build_repos(args.fixtures), args.token, log)
    # Exit with the test script even if it dies without killing us.
    parent = os.getppid()

    def watch_parent():
        while os.getppid() == parent:
            threading.Event().wait(1.0)
        os._exit(0)

    threading.Thread(target=watch_parent, daemon=True).start()
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(server.server_address[1]))
    os.replace(tmp, args.port_file)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
