// Retrieval replicas (docs/scale-out.md): published generations of an index
// folder (opened read-only, switched without restart, never half-seen), the
// index writer lease in the store (SQLite and PostgreSQL), and two in-process
// servers on one folder and one store: the writer adds, the read replica sees
// it without restart, a second writer is refused (HTTP 409, CLI exit 2) naming
// the holder, and a dead writer's lease runs out.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

#include "index/index_store.h"
#include "server/index_replica.h"
#include "server/index_writer_lease.h"
#include "server_test_util.h"
#include "store/clock.h"
#include "test_postgres_util.h"

namespace fs = std::filesystem;

namespace mmfuse::test {
namespace {

constexpr int kDim = 4;

struct TempFolder {
  TempFolder() {
    path = fs::temp_directory_path() /
           ("mmfuse_replicas_" + std::to_string(::getpid()) + "_" + std::to_string(counter()++));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempFolder() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  static int& counter() {
    static int n = 0;
    return n;
  }
  fs::path path;
};

// A writer of a 4-d index of text items (no model: vectors are given).
std::unique_ptr<IndexStore> new_index(const fs::path& dir) {
  auto w = IndexStore::open_write(dir, true);
  IndexSettings s;
  s.model_name = "none";
  s.model_path = "/none";
  s.model_id = "test-fingerprint";
  s.dim = kDim;
  s.kind = "flat";
  w->initialise(s);
  return w;
}

// Commits `n` text items "<prefix>0".. with distinct vectors.
void add_items(IndexStore& w, const std::string& prefix, int n) {
  ChangeSet c;
  for (int i = 0; i < n; ++i) {
    ItemRecord item;
    item.type = "text";
    item.path = prefix + std::to_string(i);
    item.text = item.path;
    item.hash = "hash-" + item.path;
    item.added_at = "2026-12-07T00:00:00Z";
    c.inserts.push_back(item);
    float v[kDim] = {1.0f, float(i + 1), float(prefix.size()), 0.5f};
    float norm = 0;
    for (float x : v) norm += x * x;
    for (float& x : v) c.insert_vectors.push_back(x / std::sqrt(norm));
  }
  w.commit(c, 1);
}

std::set<std::string> names_in(const fs::path& dir) {
  std::set<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) out.insert(e.path().filename().string());
  return out;
}

size_t searchable(IndexStore& s) {
  const VectorIndex* v = s.vectors("text");
  return v ? v->size() : 0;
}

}  // namespace

TEST(IndexPublish, ReplicasOpenOnlyPublishedGenerationsAndOldOnesStayUsable) {
  TempFolder tmp;
  const fs::path dir = tmp.path / "idx";
  auto w = new_index(dir);
  add_items(*w, "a", 3);
  // Not published: a replica has nothing to open, and a plain write publishes nothing.
  w->publish();
  EXPECT_EQ(IndexStore::published_marker(dir), "");
  EXPECT_THROW(IndexStore::open_published(dir), Error);

  w->publish(true);
  EXPECT_EQ(IndexStore::published_marker(dir), "catalog.1.sqlite");
  auto old = IndexStore::open_published(dir);
  EXPECT_EQ(old->generation(), 1);
  EXPECT_EQ(old->catalog().count("text"), 3u);
  EXPECT_EQ(searchable(*old), 3u);

  add_items(*w, "bb", 2);
  // Committed but not yet published: replicas still see generation 1.
  EXPECT_EQ(IndexStore::open_published(dir)->generation(), 1);
  w->publish();
  auto now = IndexStore::open_published(dir);
  EXPECT_EQ(now->generation(), 2);
  EXPECT_EQ(now->catalog().count("text"), 5u);
  EXPECT_EQ(searchable(*now), 5u);
  auto copy = now->same_generation();
  EXPECT_EQ(copy->generation(), 2);
  EXPECT_EQ(copy->catalog().count("text"), 5u);
  EXPECT_EQ(copy->vectors("text"), now->vectors("text"));  // shared, not reloaded

  // Two more generations: the published folder keeps the last two only, while
  // a search still holding generation 1 finishes on it.
  add_items(*w, "ccc", 1);
  w->publish();
  add_items(*w, "dddd", 1);
  w->publish();
  const auto names = names_in(dir / "published");
  EXPECT_EQ(names, (std::set<std::string>{"CURRENT", "catalog.3.sqlite", "catalog.4.sqlite",
                                          "text.3.faiss", "text.4.faiss"}));
  EXPECT_EQ(old->catalog().count("text"), 3u);
  EXPECT_EQ(searchable(*old), 3u);
  const float q[kDim] = {0.5f, 0.5f, 0.5f, 0.5f};
  const auto hits = old->vectors("text")->search(q, 1, 10, 1);
  EXPECT_EQ(hits[0].size(), 3u);
  for (const auto& hit : hits[0]) EXPECT_TRUE(old->catalog().item_by_id(hit.id).has_value());

  // What a publish killed half-way leaves is never read, and is cleared by the next.
  std::ofstream(dir / "published" / "catalog.9.sqlite.tmp") << "half";
  std::ofstream(dir / "published" / "text.9.faiss.tmp") << "half";
  EXPECT_EQ(IndexStore::open_published(dir)->generation(), 4);
  add_items(*w, "e", 1);
  w->publish();
  EXPECT_FALSE(fs::exists(dir / "published" / "catalog.9.sqlite.tmp"));
  EXPECT_FALSE(fs::exists(dir / "published" / "text.9.faiss.tmp"));
  // Readers opened the snapshots immutable: no -wal, -shm or journal files appear.
  for (const auto& n : names_in(dir / "published")) EXPECT_EQ(n.find("-"), std::string::npos) << n;
  EXPECT_EQ(IndexStore::open_published(dir)->catalog().count("text"), 8u);
}

TEST(IndexReplicaView, SwapsToANewerGenerationWhileSearchesKeepTheirs) {
  TempFolder tmp;
  const fs::path dir = tmp.path / "idx";
  server::IndexReplica replica(dir.string(), std::chrono::hours(1));  // refreshed by hand
  EXPECT_EQ(replica.open(), nullptr);                                 // nothing published yet
  EXPECT_EQ(replica.generation(), -1);
  auto w = new_index(dir);
  add_items(*w, "a", 2);
  w->publish(true);
  auto first = replica.open();  // looks itself when it holds nothing
  ASSERT_NE(first, nullptr);
  EXPECT_EQ(first->catalog().count("text"), 2u);
  EXPECT_FALSE(replica.refresh());  // nothing newer
  add_items(*w, "b", 3);
  w->publish();
  EXPECT_TRUE(replica.refresh());
  EXPECT_EQ(replica.generation(), 2);
  auto second = replica.open();
  EXPECT_EQ(second->catalog().count("text"), 5u);
  EXPECT_EQ(searchable(*second), 5u);
  EXPECT_EQ(first->catalog().count("text"), 2u);  // the in-flight one is unchanged
  EXPECT_EQ(searchable(*first), 2u);
}

using IndexWriterLeaseP = StoreBackendTest;

TEST_P(IndexWriterLeaseP, OneWriterAtATimeAndADeadWritersLeaseRunsOut) {
  store::FakeClock clock;
  store::StoreOptions options;
  options.clock = &clock;
  auto a = open(options);  // two processes' connections to one store
  auto b = open(options);
  const std::string dir = "/data/index";
  {
    server::IndexWriterLease held(*a, dir, "host-a:1", 30000);
    EXPECT_TRUE(held.held());
    try {
      server::IndexWriterLease second(*b, dir, "host-b:2", 30000);
      ADD_FAILURE() << "a second writer got the lease";
    } catch (const server::IndexWriterBusy& e) {
      EXPECT_EQ(e.holder(), "host-a:1");
      EXPECT_NE(std::string(e.what()).find("host-a:1"), std::string::npos) << e.what();
      EXPECT_EQ(e.kind(), ErrorKind::bad_input);  // exit 2 in the CLI
    }
    // Another folder is another lease.
    server::IndexWriterLease other(*b, "/data/other-index", "host-b:2", 30000);
  }
  // Released on destruction: the next writer need not wait.
  { server::IndexWriterLease next(*b, dir + "/", "host-b:2", 30000); }

  // A writer killed mid-write (its lease taken, never released).
  const std::string name = server::index_writer_lease_name(dir);
  EXPECT_EQ(name, "index-writer:/data/index");
  ASSERT_TRUE(a->acquire_lease(name, "host-a:1", 30000));
  clock.advance_ms(29000);
  EXPECT_THROW(server::IndexWriterLease(*b, dir, "host-b:2", 30000), server::IndexWriterBusy);
  clock.advance_ms(1001);
  {
    server::IndexWriterLease takeover(*b, dir, "host-b:2", 30000);
    EXPECT_TRUE(takeover.held());
    // The old writer coming back finds the lease gone.
    std::pair<std::string, int64_t> who;
    EXPECT_FALSE(a->acquire_lease(name, "host-a:1", 30000, &who));
    EXPECT_EQ(who.first, "host-b:2");
    EXPECT_EQ(who.second, clock.now_ms() + 30000);
  }
  // Sinks' dispatch leases live in the same table, untouched by index leases.
  EXPECT_TRUE(a->acquire_sink_lease("mqtt", "host-a:1", 30000));
  EXPECT_FALSE(b->acquire_sink_lease("mqtt", "host-b:2", 30000));
}

INSTANTIATE_TEST_SUITE_P(Backends, IndexWriterLeaseP,
                         ::testing::Values(StoreBackend::sqlite, StoreBackend::postgres),
                         backend_name);

using ServerIndexReplicasP = StoreBackendTest;

namespace {

// Texts found by a text search of the server (path = the text's key).
std::set<std::string> found_texts(RunningServer& s, const std::string& text) {
  auto r = s.client().Post("/v1/search",
                           nlohmann::json({{"text", text}, {"type", "text"}, {"top_k", 50}}).dump(),
                           "application/json");
  std::set<std::string> out;
  if (!r || r->status != 200) return out;
  const nlohmann::json answer = json_of(r);
  for (const auto& hit : answer["results"]) out.insert(hit["path"].get<std::string>());
  return out;
}

// Waits (up to 20 s) until the replica's search finds exactly `want`.
::testing::AssertionResult replica_finds(RunningServer& s, const std::set<std::string>& want) {
  std::set<std::string> got;
  for (int i = 0; i < 400; ++i) {
    got = found_texts(s, "a red bicycle");
    if (got == want) return ::testing::AssertionSuccess();
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  auto r = s.client().Post("/v1/search", R"({"text":"a red bicycle","type":"text"})",
                           "application/json");
  return ::testing::AssertionFailure()
         << "the replica finds " << got.size() << " items; last answer: "
         << (r ? std::to_string(r->status) + " " + r->body.substr(0, 300) : "none");
}

int run_status(const std::string& cmd) {
  const int rc = std::system(cmd.c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

}  // namespace

TEST_P(ServerIndexReplicasP, WriterAddsReplicaFollowsSecondWriterRefusedDeadLeaseHandedOver) {
  TempFolder tmp;
  const fs::path dir = tmp.path / "idx";
  auto writer_cfg = tiny_config();
  writer_cfg.index_dir = dir.string();
  writer_cfg.index_publish = true;
  writer_cfg.store_url = url();
  auto replica_cfg = tiny_config();
  replica_cfg.index_dir = dir.string();
  replica_cfg.index_read_only = true;
  replica_cfg.index_poll_ms = 20;
  RunningServer writer(writer_cfg);
  RunningServer replica(replica_cfg);
  auto w = writer.client();
  auto r = replica.client();

  // Nothing published yet: the replica answers searches with no results.
  EXPECT_TRUE(found_texts(replica, "a red bicycle").empty());
  auto add = [&](const std::string& id, const std::string& text) {
    return w.Post("/v1/index/items",
                  nlohmann::json({{"texts", {{{"id", id}, {"text", text}}}}}).dump(),
                  "application/json");
  };
  auto added = add("t1", "a red bicycle");
  ASSERT_EQ(added->status, 201) << added->body;
  EXPECT_TRUE(replica_finds(replica, {"t1"}));
  ASSERT_EQ(add("t2", "a cat on a mat")->status, 201);
  EXPECT_TRUE(replica_finds(replica, {"t1", "t2"}));  // a new generation, no restart

  // The replica refuses writes, naming what to do.
  auto refused = r.Post("/v1/index/items", R"({"texts":["x"]})", "application/json");
  EXPECT_EQ(refused->status, 403);
  EXPECT_EQ(error_type(refused), "read_only");
  EXPECT_EQ(r.Delete("/v1/index/items/1")->status, 403);

  // Another writer (a process on another node) holds the lease: 409 naming it,
  // and the CLI refuses with exit 2.
  auto store = open();
  const std::string name = server::index_writer_lease_name(dir.string());
  ASSERT_TRUE(store->acquire_lease(name, "node-7:4242", 60000));
  auto busy = add("t3", "a green boat");
  EXPECT_EQ(busy->status, 409) << busy->body;
  EXPECT_EQ(error_type(busy), "conflict");
  EXPECT_NE(busy->body.find("node-7:4242"), std::string::npos) << busy->body;
  const fs::path texts = tmp.path / "texts.txt";
  std::ofstream(texts) << "a blue kite\n";
  const fs::path err = tmp.path / "err.txt";
  EXPECT_EQ(
      run_status(std::string(MMFUSE_BINARY) + " index add-text --quiet --index " + dir.string() +
                 " --store '" + url() + "' " + texts.string() + " > /dev/null 2> " + err.string()),
      2);
  EXPECT_NE(file_text(err).find("node-7:4242"), std::string::npos) << file_text(err);

  // That writer dies: once its lease runs out (here: renewed to 1 ms, then never
  // again) the server writes again, and the replica follows.
  ASSERT_TRUE(store->acquire_lease(name, "node-7:4242", 1));
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  auto after = add("t3", "a green boat");
  ASSERT_EQ(after->status, 201) << after->body;
  EXPECT_TRUE(replica_finds(replica, {"t1", "t2", "t3"}));
  // The CLI writer too (it publishes, since the folder is published).
  EXPECT_EQ(
      run_status(std::string(MMFUSE_BINARY) + " index add-text --quiet --index " + dir.string() +
                 " --store '" + url() + "' " + texts.string() + " > /dev/null"),
      0);
  EXPECT_TRUE(replica_finds(replica, {"t1", "t2", "t3", texts.string() + ":1"}));
}

INSTANTIATE_TEST_SUITE_P(Backends, ServerIndexReplicasP,
                         ::testing::Values(StoreBackend::sqlite, StoreBackend::postgres),
                         backend_name);

}  // namespace mmfuse::test
