// `mmfuse search`: text→image, image→image and image→text retrieval in an index folder.
#include "cli/commands.h"
#include "cli/common.h"
#include "mmfuse/index.h"

namespace mmfuse::cli {

void register_search(CLI::App& app) {
  struct Options {
    std::string index;
    SearchQuery request;
    int threads = 0;
  };
  auto opt = std::make_shared<Options>();
  auto* cmd = app.add_subcommand("search", "Search an index folder by text or image");
  cmd->add_option("--index", opt->index, "Index folder")->required();
  auto* text = cmd->add_option("--text", opt->request.text, "Text query");
  auto* image = cmd->add_option("--image", opt->request.image_path, "Image query (file)");
  text->excludes(image);
  cmd->add_option("--top-k", opt->request.top_k, "Results")->check(CLI::Range(1, 100000));
  cmd->add_option("--min-score", opt->request.min_score, "Drop results scoring below this cosine");
  cmd->add_option("--type", opt->request.type, "Items to search: image (default), text or all")
      ->check(CLI::IsMember({"image", "text", "all"}));
  cmd->add_option("--ef-search", opt->request.ef_search,
                  "HNSW search beam for this query (default: the index's; wider = better recall)")
      ->check(CLI::Range(1, 32768));
  cmd->add_option("--nprobe", opt->request.nprobe,
                  "IVF cells visited for this query (default: the index's)")
      ->check(CLI::Range(1, 1 << 20));
  cmd->add_option("--model", opt->request.model_dir,
                  "Model folder (default: the one the index was built with)");
  add_threads_option(cmd, &opt->threads);
  add_dtype_option(cmd, &opt->request.dtype);
  cmd->callback([opt] {
    apply_threads(opt->threads);
    Json results = Json::array();
    for (const IndexHit& r : search_index(opt->index, opt->request, command_pool())) {
      Json j = {
          {"path", r.path}, {"score", shortest_float(r.score)}, {"id", r.id}, {"type", r.type}};
      if (r.type == "text") j["text"] = r.text;
      if (!r.caption.empty()) j["caption"] = r.caption;
      if (r.fused_score > 0) j["rrf"] = r.fused_score;
      results.push_back(std::move(j));
    }
    print_json({{"results", results}});
  });
}

}  // namespace mmfuse::cli
