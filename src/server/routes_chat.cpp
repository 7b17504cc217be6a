// POST /v1/chat/completions and POST /v1/completions (OpenAI-compatible):
// parse and check the body, render the chat template, decode the images,
// prepare the prompt, submit one request per choice to the model's
// continuous-batching scheduler, then answer whole or as server-sent events.
// A streamed request whose client goes away is cancelled (its sequences leave
// the batch at the next step).
#include <chrono>
#include <condition_variable>
#include <ctime>
#include <deque>
#include <future>

#include "server/chat_request.h"
#include "server/chat_response.h"
#include "server/http_util.h"
#include "server/image_source.h"
#include "server/server_context.h"
#include "generate/chat_template.h"
#include "generate/text_stream.h"

namespace mmfuse::server {

namespace {

using Clock = std::chrono::steady_clock;

// The body as plain nlohmann::json (what the chat template renderer reads).
nlohmann::json parse_body(const httplib::Request& req) {
  if (req.body.empty())
    throw_error(ErrorKind::bad_input, "request body: empty (expected a JSON object)");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(req.body);
  } catch (const nlohmann::json::parse_error& e) {
    throw_error(ErrorKind::bad_input,
                "request body: not valid JSON (at byte " + std::to_string(e.byte) + ")");
  }
  MMFUSE_CHECK(j.is_object(), bad_input, "request body: expected a JSON object");
  return j;
}

// One request's choices in flight, shared by the scheduler's worker (which
// reports tokens) and the HTTP thread (which answers); owned by both.
struct Generation {
  struct Choice {
    std::deque<int32_t> pending;  // reported, not yet handed to the client
    std::future<GenerationResult> result;
    Clock::time_point first_token{}, last_token{};
  };
  Generation(size_t n, std::string model, Metrics& m, Clock::time_point t)
      : choices(n), model_name(std::move(model)), metrics(m), arrived(t) {}

  void on_token(size_t i, int32_t token) {
    const auto now = Clock::now();
    {
      std::lock_guard<std::mutex> lock(mutex);
      Choice& c = choices[i];
      if (c.first_token == Clock::time_point{}) c.first_token = now;
      c.last_token = now;
      c.pending.push_back(token);
      if (!first_token_seen) {
        first_token_seen = true;
        metrics.observe_first_token(model_name,
                                    std::chrono::duration<double>(now - arrived).count());
      }
    }
    changed.notify_all();
  }

  std::mutex mutex;
  std::condition_variable changed;
  std::atomic<bool> cancel{false};
  std::vector<Choice> choices;
  std::string model_name;  // the base model (metrics label)
  Metrics& metrics;
  Clock::time_point arrived;
  bool first_token_seen = false;
};

struct PreparedRequest {
  CompletionKind kind = CompletionKind::chat;
  GenerativeTarget target;
  SamplingRequest sampling;
  size_t prompt_positions = 0;
  std::string id;
  int64_t created = 0;
};

// The prompt (chat template or raw text) and its images, prepared by the model.
PromptInput prepare_prompt(ServerContext& ctx, const nlohmann::json& body, PreparedRequest& p) {
  const RequestLimits limits{ctx.config.limits.max_choices, ctx.config.limits.max_images};
  std::string model_id, prompt;
  std::vector<Image> images;
  if (p.kind == CompletionKind::chat) {
    ChatRequest r = parse_chat_request(body, limits);
    model_id = r.model;
    p.sampling = std::move(r.sampling);
    p.target = ctx.generative_model(model_id);
    const GenerativeModel& gm = *p.target.model->model;
    MMFUSE_CHECK(!gm.chat_template().empty(), bad_input,
                 "model: \"" + p.target.id +
                     "\" has no chat template; send a plain prompt to /v1/completions");
    MMFUSE_CHECK(r.image_urls.empty() || gm.takes_images(), bad_input,
                 "messages: \"" + p.target.id + "\" does not take images");
    const HfConversation hf =
        openai_to_hf_messages(r.messages, template_reads_content_parts(gm.chat_template()));
    MMFUSE_CHECK(hf.image_urls.size() == r.image_urls.size(), internal,
                 "messages: image parts counted differently by the template converter");
    prompt = render_chat(gm.chat_template(), hf.messages, /*add_generation_prompt=*/true,
                         gm.tokenizer());
    ImageSourcePolicy policy;
    policy.allow_remote = p.target.model->spec.allow_remote_images;
    policy.max_bytes = ctx.config.limits.max_body_bytes;
    policy.timeout_s = ctx.config.limits.request_timeout_s;
    for (size_t i = 0; i < r.image_urls.size(); ++i) {
      const std::string field = "messages: image " + std::to_string(i + 1) + " (image_url.url)";
      images.push_back(decode_limited_image(image_url_bytes(r.image_urls[i], field, policy), field,
                                            ctx.config.limits.max_image_pixels));
    }
  } else {
    CompletionRequest r = parse_completion_request(body, limits);
    p.sampling = std::move(r.sampling);
    p.target = ctx.generative_model(r.model);
    prompt = std::move(r.prompt);
  }
  return p.target.model->model->prepare(prompt, images, p.target.adapter);
}

// Queues one scheduler request per choice; 503 (and nothing left running) when the queue is full.
std::shared_ptr<Generation> submit(ServerContext& ctx, PreparedRequest& p, PromptInput prompt,
                                   Clock::time_point arrived) {
  LoadedGenerativeModel& m = *p.target.model;
  const GenerativeModel& gm = *m.model;
  const LanguageModel& lm = gm.language_model();
  p.prompt_positions = prompt.length();
  std::vector<GenerationConfig> configs;
  for (size_t i = 0; i < p.sampling.n; ++i)
    configs.push_back(generation_config_for(p.sampling, gm.generation_defaults(),
                                            p.prompt_positions, lm.max_positions(), i));
  auto gen = std::make_shared<Generation>(p.sampling.n, m.spec.name, ctx.metrics, arrived);
  for (size_t i = 0; i < p.sampling.n; ++i) {
    GenerationRequest r;
    r.model = &lm;
    r.prompt = i + 1 == p.sampling.n ? std::move(prompt) : prompt;
    r.config = std::move(configs[i]);
    r.tokenizer = &gm.tokenizer();
    r.adapter = p.target.adapter;
    // The callback owns the shared state, so it outlives a handler that gave up.
    r.on_token = [gen, i](int32_t token) {
      gen->on_token(i, token);
      return !gen->cancel.load();
    };
    r.cancel = &gen->cancel;
    auto future = m.scheduler->submit(std::move(r));
    if (!future) {
      gen->cancel = true;  // choices already queued leave at once
      ctx.metrics.count_rejected(m.spec.name);
      throw HttpError(503, "unavailable",
                      "model " + m.spec.name + " is busy (" + std::to_string(m.spec.max_queued) +
                          " requests queued); retry shortly");
    }
    gen->choices[i].result = std::move(*future);
  }
  return gen;
}

std::string finish_reason_of(const GeneratedSequence& s, bool stopped_by_string) {
  return stopped_by_string || s.finish_reason == FinishReason::stop ? "stop" : "length";
}

double decode_seconds(const Generation::Choice& c) {
  return std::chrono::duration<double>(c.last_token - c.first_token).count();
}

void answer_whole(ServerContext& ctx, const PreparedRequest& p, Generation& gen,
                  httplib::Response& res) {
  const auto deadline = gen.arrived + std::chrono::seconds(ctx.config.limits.generation_timeout_s);
  const GenerativeTokenizer& tokenizer = p.target.model->model->tokenizer();
  std::vector<ChoiceText> choices;
  Usage usage{p.prompt_positions, 0};
  for (size_t i = 0; i < gen.choices.size(); ++i) {
    Generation::Choice& c = gen.choices[i];
    if (c.result.wait_until(deadline) != std::future_status::ready) {
      gen.cancel = true;
      throw HttpError(504, "timeout",
                      "the generation did not finish within " +
                          std::to_string(ctx.config.limits.generation_timeout_s) +
                          " s (limits.generation_timeout_s); stream it or lower max_tokens");
    }
    const GenerationResult result = c.result.get();  // the generator's error becomes the answer
    MMFUSE_CHECK(!result.sequences.empty(), internal, "the generator returned no sequence");
    const GeneratedSequence& seq = result.sequences.front();
    bool stopped = false;
    ChoiceText choice;
    choice.index = i;
    choice.text = final_text(tokenizer, seq.tokens, p.sampling.stop, &stopped);
    choice.finish_reason = finish_reason_of(seq, stopped);
    usage.completion_tokens += seq.tokens.size();
    std::lock_guard<std::mutex> lock(gen.mutex);
    ctx.metrics.observe_generation(gen.model_name, choice.finish_reason, seq.tokens.size(),
                                   decode_seconds(c));
    choices.push_back(std::move(choice));
  }
  send_json(res, completion_response(p.kind, p.id, p.created, p.target.id, choices, usage));
}

// The client went away: cancel, and wait for the scheduler to drop the
// sequences (at its next step) so the metrics count what was generated.
void abandon(ServerContext& ctx, Generation& gen, const std::vector<bool>& finished) {
  gen.cancel = true;
  const auto limit = Clock::now() + std::chrono::seconds(10);
  for (size_t i = 0; i < gen.choices.size(); ++i) {
    if (finished[i] || gen.choices[i].result.wait_until(limit) != std::future_status::ready)
      continue;
    size_t tokens = 0;
    try {
      const GenerationResult r = gen.choices[i].result.get();
      if (!r.sequences.empty()) tokens = r.sequences.front().tokens.size();
    } catch (const std::exception&) {
    }
    std::lock_guard<std::mutex> lock(gen.mutex);
    ctx.metrics.observe_generation(gen.model_name, "cancelled", tokens,
                                   decode_seconds(gen.choices[i]));
  }
}

// Writes the whole event stream from the HTTP thread; returns false when the
// client went away (the generation is then cancelled).
bool stream_answer(ServerContext& ctx, const PreparedRequest& p, Generation& gen,
                   httplib::DataSink& sink) {
  auto last_write = Clock::now();
  const size_t n = gen.choices.size();
  std::vector<bool> finished(n, false);
  auto send = [&](const std::string& event) {
    if (!sink.write(event.data(), event.size())) {
      abandon(ctx, gen, finished);
      return false;
    }
    last_write = Clock::now();
    return true;
  };
  auto chunk = [&](size_t i, std::optional<std::string> role, std::optional<std::string> content,
                   std::optional<std::string> reason) {
    return send(sse_event(
        completion_chunk(p.kind, p.id, p.created, p.target.id, i, role, content, reason)));
  };
  const GenerativeTokenizer& tokenizer = p.target.model->model->tokenizer();
  std::vector<TextStream> streams;
  for (size_t i = 0; i < n; ++i) streams.emplace_back(tokenizer, p.sampling.stop);
  if (p.kind == CompletionKind::chat)
    for (size_t i = 0; i < n; ++i)
      if (!chunk(i, "assistant", "", std::nullopt)) return false;

  const auto deadline = gen.arrived + std::chrono::seconds(ctx.config.limits.generation_timeout_s);
  size_t remaining = n;
  Usage usage{p.prompt_positions, 0};
  while (remaining > 0) {
    std::vector<std::vector<int32_t>> fresh(n);
    std::vector<bool> ready(n, false);
    {
      std::unique_lock<std::mutex> lock(gen.mutex);
      // Tokens wake us at once; the end of a choice (a ready future) is polled.
      gen.changed.wait_for(lock, std::chrono::milliseconds(20), [&] {
        for (size_t i = 0; i < n; ++i)
          if (!finished[i] && !gen.choices[i].pending.empty()) return true;
        return false;
      });
      for (size_t i = 0; i < n; ++i) {
        if (finished[i]) continue;
        // Readiness first: every token of a finished choice is already pending.
        ready[i] =
            gen.choices[i].result.wait_for(std::chrono::seconds(0)) == std::future_status::ready;
        fresh[i].assign(gen.choices[i].pending.begin(), gen.choices[i].pending.end());
        gen.choices[i].pending.clear();
      }
    }
    for (size_t i = 0; i < n; ++i) {
      std::string text;
      for (int32_t t : fresh[i]) text += streams[i].push(t);
      if (!text.empty() && !chunk(i, std::nullopt, text, std::nullopt)) return false;
    }
    for (size_t i = 0; i < n; ++i) {
      if (!ready[i]) continue;
      finished[i] = true;
      --remaining;
      GenerationResult result;
      try {
        result = gen.choices[i].result.get();
        MMFUSE_CHECK(!result.sequences.empty(), internal, "the generator returned no sequence");
      } catch (const std::exception& e) {
        // Headers are gone: the error travels as an event (as vLLM does).
        gen.cancel = true;
        send(sse_event({{"error", {{"type", "internal"}, {"message", e.what()}}}}));
        send(kSseDone);
        sink.done();
        return true;
      }
      const GeneratedSequence& seq = result.sequences.front();
      // Tokens the callback did not report (a result given whole) follow the streamed ones.
      std::string text;
      for (size_t k = streams[i].tokens().size(); k < seq.tokens.size(); ++k)
        text += streams[i].push(seq.tokens[k]);
      text += streams[i].finish();
      if (!text.empty() && !chunk(i, std::nullopt, text, std::nullopt)) return false;
      const std::string reason = finish_reason_of(seq, streams[i].stopped());
      if (!chunk(i, std::nullopt, std::nullopt, reason)) return false;
      usage.completion_tokens += seq.tokens.size();
      std::lock_guard<std::mutex> lock(gen.mutex);
      ctx.metrics.observe_generation(gen.model_name, reason, seq.tokens.size(),
                                     decode_seconds(gen.choices[i]));
    }
    const auto now = Clock::now();
    if (remaining > 0 && now > deadline) {
      gen.cancel = true;
      send(sse_event({{"error",
                       {{"type", "timeout"},
                        {"message", "the generation did not finish within " +
                                        std::to_string(ctx.config.limits.generation_timeout_s) +
                                        " s (limits.generation_timeout_s)"}}}}));
      send(kSseDone);
      sink.done();
      return true;
    }
    // While queued or between slow steps: a comment line finds a client that left.
    if (remaining > 0 && now - last_write > std::chrono::seconds(1) && !send(kSseKeepAlive))
      return false;
  }
  if (p.sampling.include_usage &&
      !send(sse_event(usage_chunk(p.kind, p.id, p.created, p.target.id, usage))))
    return false;
  if (!send(kSseDone)) return false;
  sink.done();
  return true;
}

void handle(ServerContext& ctx, CompletionKind kind, const httplib::Request& req,
            httplib::Response& res) {
  const auto arrived = Clock::now();
  const nlohmann::json body = parse_body(req);
  auto p = std::make_shared<PreparedRequest>();
  p->kind = kind;
  PromptInput prompt = prepare_prompt(ctx, body, *p);
  p->id = new_completion_id(kind);
  p->created = static_cast<int64_t>(std::time(nullptr));
  std::shared_ptr<Generation> gen = submit(ctx, *p, std::move(prompt), arrived);
  if (!p->sampling.stream) return answer_whole(ctx, *p, *gen, res);

  res.set_header("Cache-Control", "no-cache");
  res.set_header("X-Accel-Buffering", "no");  // nginx: pass events on as they come
  res.set_chunked_content_provider(
      "text/event-stream",
      [&ctx, p, gen](size_t, httplib::DataSink& sink) {
        return stream_answer(ctx, *p, *gen, sink);
      },
      [gen](bool success) {
        if (!success) gen->cancel = true;  // the client went away or the server stops
      });
}

}  // namespace

void add_chat_routes(httplib::Server& http, ServerContext& ctx) {
  add_route(http, ctx, "POST", "/v1/chat/completions",
            [&ctx](const httplib::Request& req, httplib::Response& res) {
              handle(ctx, CompletionKind::chat, req, res);
            });
  add_route(http, ctx, "POST", "/v1/completions",
            [&ctx](const httplib::Request& req, httplib::Response& res) {
              handle(ctx, CompletionKind::text, req, res);
            });
}

}  // namespace mmfuse::server
