#!/usr/bin/env bash
# CLI contract for generation (DESIGN.md §4): `mmfuse generate` on the tiny LLaVA
# fixtures gives transformers 4.44's tokens (greedy, beam 3, a LoRA adapter merged at
# load, the chat template), `--stream` prints the same text, `bench` reports the
# generative fields, and bad input exits 2 naming the culprit.
# Usage: generate_cli.sh MMFUSE_BINARY FIXTURES_DIR
set -uo pipefail
MMFUSE=$1
FIX=$2
PY=/usr/bin/python3
LLAVA=$FIX/llava/models/llava-1.5-tiny
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
source "$(dirname "${BASH_SOURCE[0]}")/lib/assert.sh"

$PY - "$MMFUSE" "$FIX" <<'PYEOF'
import json, subprocess, sys
mmfuse, fix = sys.argv[1], sys.argv[2]
llava = f"{fix}/llava/models/llava-1.5-tiny"
images = [f"{fix}/photos/bus.jpg", f"{fix}/photos/coco_000000052891.jpg"]
def run(*args):
    out = subprocess.run([mmfuse, "generate", "--threads", "2", *args], capture_output=True, check=True)
    return out.stdout.decode()
for model, adapter in (("llava-1.5-tiny", None), ("llava-1.5-tiny-gqa", None),
                       ("llava-1.5-tiny-lora", "llava-1.5-tiny-lora")):
    folder = f"{fix}/llava/models/{'llava-1.5-tiny' if adapter else model}"
    extra = ["--adapter", f"{fix}/llava/models/{adapter}"] if adapter else []
    for c in json.load(open(f"{fix}/llava/outputs/{model}/outputs.json"))["cases"]:
        image = images[c["image_index"]]
        d = json.loads(run("--model", folder, "--image", image, "--prompt", c["text"],
                           "--max-new-tokens", "16", "--json", *extra))
        assert list(d) == ["model", "text", "tokens", "prompt_tokens", "finish_reason"], list(d)
        assert d["tokens"] == c["new_ids"], (model, c["case"], d["tokens"], c["new_ids"])
        assert d["text"] == c["new_text"], (d["text"], c["new_text"])
        assert d["prompt_tokens"] == c["lm_sequence_length"], d
        assert d["finish_reason"] == "length", d
        # --chat wraps the bare question in the folder's template: the same prompt.
        d2 = json.loads(run("--model", folder, "--image", image, "--prompt", c["user_prompt"],
                            "--chat", "--max-new-tokens", "16", "--json", *extra))
        assert d2["tokens"] == c["new_ids"], (model, "chat", d2["tokens"])
        if c.get("beam3"):
            d3 = json.loads(run("--model", folder, "--image", image, "--prompt", c["text"],
                                "--max-new-tokens", "16", "--num-beams", "3", "--json", *extra))
            assert d3["tokens"] == c["beam3"]["new_ids"], (model, "beam", d3["tokens"])
        # --stream prints the same text as it comes.
        s = run("--model", folder, "--image", image, "--prompt", c["text"], "--max-new-tokens", "16",
                "--stream", *extra)
        assert s == c["new_text"] + "\n", (s, c["new_text"])
out = subprocess.run([mmfuse, "bench", "--model", llava, "--prompt-tokens", "16", "--new-tokens", "4",
                      "--iterations", "1", "--threads", "1", "--json"], capture_output=True, check=True)
b = json.loads(out.stdout)
for key in ("prefill_tokens_per_s", "decode_tokens_per_s", "peak_rss_mb", "load_ms"):
    assert b[key] > 0, (key, b)
PYEOF
check "generate: greedy, beam, LoRA, chat template and --stream match transformers; bench fields" $?

# chat: /image attaches to the next message; the reply streams the reference answer.
printf '/image %s\nWhat is shown in this image?\n' "$FIX/photos/bus.jpg" |
  "$MMFUSE" chat --model "$LLAVA" --max-new-tokens 16 --threads 1 >"$TMP/chat.out" 2>"$TMP/chat.err"
$PY -c 'import json,sys; want=json.load(open(sys.argv[2]))["cases"][0]["new_text"]; got=open(sys.argv[1]).read().splitlines(); assert got == [want], (got, want)' \
  "$TMP/chat.out" "$FIX/llava/outputs/llava-1.5-tiny/outputs.json"
check "chat: an attached image and a question give the reference reply" $?

expect_error "missing image" "none.jpg" "$MMFUSE" generate --model "$LLAVA" --image "$TMP/none.jpg" \
  --prompt "USER: <image> hi ASSISTANT:"
expect_error "image without a placeholder" "<image>" "$MMFUSE" generate --model "$LLAVA" \
  --image "$FIX/photos/bus.jpg" --prompt "USER: hi ASSISTANT:"
expect_error "adapter for another base" "v_proj.weight" "$MMFUSE" generate \
  --model "$FIX/llava/models/llava-1.5-tiny-gqa" --adapter "$FIX/llava/models/llava-1.5-tiny-lora" \
  --prompt "hi"
expect_error "not a generative model" "generate" "$MMFUSE" generate \
  --model "$FIX/clip/models/clip-tiny-gelu-p16" --prompt "hi"
expect_error "bad temperature" "temperature" "$MMFUSE" generate --model "$LLAVA" --prompt "hi" \
  --do-sample --temperature -1

finish generate_cli
