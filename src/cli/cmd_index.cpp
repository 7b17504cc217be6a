// `mmfuse index add | add-text | sync | remove | publish | stats | bench`: build
// and maintain an index folder (FAISS + SQLite catalogue, see docs/retrieval.md).
// With a store (--store or $MMFUSE_STORE) the writing commands hold the index
// writer lease in it (docs/scale-out.md, "Retrieval replicas").
#include <filesystem>
#include <optional>

#include "cli/captioning.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "core/thread_pool.h"
#include "index/indexer.h"
#include "mmfuse/error.h"
#include "server/index_writer_lease.h"
#include "store/store.h"
#include "tools/ann_bench.h"

namespace mmfuse::cli {

namespace {

struct Common {
  std::string index, model, kind = "auto";
  int threads = 0;
  std::string dtype = "f32";
  size_t batch = 32, commit_every = 1024;
  IndexParams params;  // kind aside, recorded when the index is created
  bool quiet = false;
  std::string caption_model;
  std::optional<std::string> caption_prompt;
  std::string store;  // --store: where the writer lease is taken
};

// The store and the writer lease held in it while a command writes (none
// without a store: one box, where the folder's flock is enough).
struct WriterLease {
  std::unique_ptr<store::Store> store;
  std::unique_ptr<server::IndexWriterLease> lease;  // declared last: released first
};

WriterLease take_writer_lease(const Common& c) {
  WriterLease w;
  const std::string url = store_url_or_env(c.store, false);
  if (url.empty()) return w;
  w.store = store::Store::open(store::parse_store_url(url));
  w.lease = std::make_unique<server::IndexWriterLease>(*w.store, c.index);
  return w;
}

void add_lease_option(CLI::App* cmd, Common& c) {
  cmd->add_option("--store", c.store,
                  "Shared store (sqlite:///path or postgresql://...; default $MMFUSE_STORE) "
                  "holding the index writer lease: a second writer of the folder is refused");
}

void add_caption_options(CLI::App* cmd, Common& c) {
  cmd->add_option("--caption-model", c.caption_model,
                  "Generative model folder (LLaVA, BLIP-2): caption every image item, and those "
                  "indexed earlier without a caption; text search then also matches captions");
  cmd->add_option("--caption-prompt", c.caption_prompt,
                  "Text asked with each image (default: the model's, see `mmfuse caption`)");
}

void add_common(CLI::App* cmd, Common& c, bool with_model) {
  cmd->add_option("--index", c.index, "Index folder")->required();
  if (with_model)
    cmd->add_option("--model", c.model, "Model folder (required to create the index)");
  add_threads_option(cmd, &c.threads);
  add_dtype_option(cmd, &c.dtype);
  cmd->add_flag("--quiet", c.quiet, "No progress on stderr");
}

void add_build_options(CLI::App* cmd, Common& c) {
  cmd->add_option(
         "--kind", c.kind,
         "Index kind for a new index: auto (flat under 50k items, hnsw under 2M, then ivf), "
         "flat, hnsw, ivf")
      ->check(CLI::IsMember({"auto", "flat", "hnsw", "ivf"}));
  cmd->add_option("--batch", c.batch, "Images per model call")->check(CLI::Range(1, 4096));
  cmd->add_option("--commit-every", c.commit_every,
                  "Items per commit (a killed run keeps what was committed)")
      ->check(CLI::Range(1, 100000000));
  cmd->add_option("--hnsw-m", c.params.hnsw_m, "HNSW graph degree")
      ->check(CLI::Range(4, 256))
      ->capture_default_str();
  cmd->add_option("--ef-construction", c.params.ef_construction, "HNSW build beam")
      ->check(CLI::Range(8, 4096))
      ->capture_default_str();
  cmd->add_option("--ef-search", c.params.ef_search, "HNSW search beam")
      ->check(CLI::Range(1, 32768))
      ->capture_default_str();
  cmd->add_option("--nlist", c.params.ivf_nlist, "IVF cells (0 = 4*sqrt(n))")
      ->check(CLI::Range(0, 1 << 20));
  cmd->add_option("--nprobe", c.params.ivf_nprobe, "IVF cells searched (0 = nlist/8, at most 128)")
      ->check(CLI::Range(0, 1 << 20));
}

IndexOptions options_of(const Common& c) {
  MMFUSE_CHECK(!c.model.empty() ||
                   std::filesystem::exists(std::filesystem::path(c.index) / "catalog.sqlite"),
               bad_input, c.index + ": no index here yet; give --model to create one");
  IndexOptions o;
  o.model_dir = c.model;
  o.precision = parse_precision(c.dtype, "--dtype");
  o.kind = c.kind;
  o.params = c.params;
  o.batch = c.batch;
  o.commit_every = c.commit_every;
  o.progress = !c.quiet;
  o.pool = command_pool();
  MMFUSE_CHECK(!c.caption_prompt || !c.caption_model.empty(), bad_input,
               "--caption-prompt needs --caption-model");
  if (!c.caption_model.empty()) {
    CaptionOptions caption;
    caption.prompt = c.caption_prompt;
    std::shared_ptr<const Captioner> captioner =
        open_captioner(c.caption_model, caption, "--caption-model");
    o.caption = [captioner](const std::string&, const Image& image) {
      return captioner->caption(image).text;
    };
  }
  return o;
}

void print_report(Indexer& indexer, const IndexReport& r) {
  IndexStore& s = indexer.store();
  Json failures = Json::array();
  for (const auto& f : r.failures) failures.push_back({{"path", f.path}, {"error", f.error}});
  const double rate = r.seconds > 0 ? static_cast<double>(r.added) / r.seconds : 0.0;
  print_json({{"index", s.dir().string()},
              {"model", s.settings().model_name},
              {"dim", s.settings().dim},
              {"added", r.added},
              {"skipped", r.skipped},
              {"failed", r.failed},
              {"removed", r.removed},
              {"captioned", r.captioned},
              {"count", s.catalog().count("")},
              {"kind", s.built_kind("image").empty() ? s.settings().kind : s.built_kind("image")},
              {"seconds", shortest_float(static_cast<float>(r.seconds))},
              {"items_per_second", shortest_float(static_cast<float>(rate))},
              {"failures", failures}});
}

}  // namespace

void register_index(CLI::App& app) {
  auto* index = app.add_subcommand("index", "Build and maintain a retrieval index folder");
  index->require_subcommand(1);

  auto c = std::make_shared<Common>();
  auto paths = std::make_shared<std::vector<std::string>>();
  auto* add = index->add_subcommand("add", "Index image files and folders (recursive)");
  add_common(add, *c, true);
  add_build_options(add, *c);
  add_caption_options(add, *c);
  add->add_option("paths", *paths, "Image files or folders")->required();
  add_lease_option(add, *c);
  add->callback([c, paths] {
    apply_threads(c->threads);
    const auto lease = take_writer_lease(*c);
    Indexer indexer(c->index, options_of(*c));
    print_report(indexer, indexer.add_files(*paths));
  });

  auto text_file = std::make_shared<std::string>();
  auto* add_text = index->add_subcommand(
      "add-text", "Index texts: one per line, or JSON lines {\"id\", \"text\"}");
  add_common(add_text, *c, true);
  add_build_options(add_text, *c);
  add_text->add_option("file", *text_file, "Text file (.txt or .jsonl)")->required();
  add_lease_option(add_text, *c);
  add_text->callback([c, text_file] {
    apply_threads(c->threads);
    const auto lease = take_writer_lease(*c);
    Indexer indexer(c->index, options_of(*c));
    print_report(indexer, indexer.add_texts(*text_file));
  });

  auto* sync = index->add_subcommand(
      "sync", "Re-scan folders: add new and changed files, drop deleted ones");
  add_common(sync, *c, true);
  add_build_options(sync, *c);
  add_caption_options(sync, *c);
  sync->add_option("paths", *paths, "Folders (default: those given to earlier adds)");
  add_lease_option(sync, *c);
  sync->callback([c, paths] {
    apply_threads(c->threads);
    const auto lease = take_writer_lease(*c);
    IndexOptions o = options_of(*c);
    Indexer indexer(c->index, o);
    print_report(indexer, indexer.sync(*paths));
  });

  auto* remove = index->add_subcommand("remove", "Remove items by file, folder or text key");
  add_common(remove, *c, false);
  remove->add_option("paths", *paths, "Files, folders or text keys")->required();
  add_lease_option(remove, *c);
  remove->callback([c, paths] {
    apply_threads(c->threads);
    const auto lease = take_writer_lease(*c);
    Indexer indexer(c->index, options_of(*c));
    print_report(indexer, indexer.remove(*paths));
  });

  auto* publish = index->add_subcommand(
      "publish",
      "Publish the committed generation to INDEX/published for read replicas (serve "
      "--index-read-only); later writes then publish by themselves");
  publish->add_option("--index", c->index, "Index folder")->required();
  add_lease_option(publish, *c);
  publish->callback([c] {
    const auto lease = take_writer_lease(*c);
    auto store = IndexStore::open_write(c->index, false);
    store->publish(true);
    print_json({{"index", store->dir().string()},
                {"generation", store->generation()},
                {"published", IndexStore::published_marker(c->index)},
                {"count", store->catalog().count("")}});
  });

  auto* stats =
      index->add_subcommand("stats", "Count, kind, dimension, size on disk and model of an index");
  add_common(stats, *c, false);
  stats->callback([c] {
    apply_threads(c->threads);
    auto store = IndexStore::open_read(c->index);
    const IndexSettings& s = store->settings();
    Json kinds = Json::object();
    size_t tombstones = 0;
    for (const char* t : IndexStore::kTypes) {
      kinds[t] = store->built_kind(t);
      if (const VectorIndex* v = store->vectors(t)) tombstones += v->tombstones();
    }
    const VectorIndex* images = store->vectors("image");
    const IndexParams p = images ? images->params() : s.params;
    print_json({{"index", store->dir().string()},
                {"count", store->catalog().count("")},
                {"images", store->catalog().count("image")},
                {"texts", store->catalog().count("text")},
                {"kind", store->built_kind("image").empty() ? s.kind : store->built_kind("image")},
                {"kind_requested", s.kind},
                {"kinds", kinds},
                {"params",
                 {{"hnsw_m", p.hnsw_m},
                  {"ef_construction", p.ef_construction},
                  {"ef_search", p.ef_search},
                  {"ivf_nlist", p.ivf_nlist},
                  {"ivf_nprobe", p.ivf_nprobe}}},
                {"dim", s.dim},
                {"model", s.model_name},
                {"model_path", s.model_path},
                {"model_id", s.model_id},
                {"generation", store->generation()},
                {"tombstones", tombstones},
                {"cached_embeddings", store->catalog().cache_size()},
                {"size_bytes", store->disk_bytes()}});
  });

  auto b = std::make_shared<AnnBenchOptions>();
  auto bench_threads = std::make_shared<int>(0);
  auto* bench = index->add_subcommand(
      "bench", "Benchmark the index kinds on synthetic vectors or an index folder's own");
  bench->add_option("--vectors", b->vectors, "Vectors in the index")
      ->check(CLI::Range(1000, 100000000));
  bench->add_option("--dim", b->dim, "Dimension")->check(CLI::Range(2, 4096));
  bench->add_option("--queries", b->queries, "Queries timed (one at a time)")
      ->check(CLI::Range(10, 1000000));
  bench->add_option("--top-k", b->top_k, "Results per query")->check(CLI::Range(1, 1000));
  bench
      ->add_option("--data", b->data,
                   "Data set: random (uniform on the sphere), clustered (embedding-like) or "
                   "index (an index folder's own embeddings, see --index)")
      ->check(CLI::IsMember({"random", "clustered", "index"}));
  bench->add_option("--index", b->index_dir,
                    "Index folder whose cached embeddings to measure on (implies --data index; "
                    "--queries of them are held out as queries)");
  bench->add_option("--type", b->index_type, "With --index: image or text items")
      ->check(CLI::IsMember({"image", "text"}));
  bench->add_option("--clusters", b->clustered.clusters, "Clusters in the clustered data")
      ->check(CLI::Range(1, 1000000));
  bench
      ->add_option("--latent-dim", b->clustered.latent_dim,
                   "Dimension of the clustered data's subspace")
      ->check(CLI::Range(1, 4096));
  bench
      ->add_option("--cluster-spread", b->clustered.cluster_spread,
                   "Spread of the clustered data around its centres (centres: 1)")
      ->check(CLI::Range(0.0, 100.0));
  bench->add_option("--kinds", b->kinds, "Kinds to measure (flat, hnsw, ivf)")->delimiter(',');
  bench->add_option("--hnsw-m", b->params.hnsw_m, "HNSW graph degree")->check(CLI::Range(4, 256));
  bench->add_option("--ef-construction", b->params.ef_construction, "HNSW build beam")
      ->check(CLI::Range(8, 4096));
  bench->add_option("--ef-search", b->ef_search, "HNSW search beams to measure")->delimiter(',');
  bench->add_option("--nprobe", b->nprobe, "IVF nprobe values to measure")->delimiter(',');
  bench->add_option("--seed", b->seed, "Random seed");
  bench
      ->add_option("--remove", b->remove_fraction,
                   "Share of the vectors to remove after each build (e.g. 0.05), then measure "
                   "search over the rest")
      ->check(CLI::Range(0.0, 0.99));
  add_threads_option(bench, bench_threads.get());
  bench->callback([b, bench_threads] {
    apply_threads(*bench_threads);
    if (!b->index_dir.empty()) b->data = "index";
    b->threads = command_pool()->size();
    print_json(run_ann_bench(*b));
  });
}

}  // namespace mmfuse::cli
