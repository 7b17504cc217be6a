#!/usr/bin/env bash
# The main job for now: set up, then embed and zero-shot classify with the
# bundled tiny CLIP model (random weights with the real geometry and vocabulary,
# so the scores are not meaningful; point --model at a pulled folder for real ones).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh >/dev/null
MODEL=${MODEL:-tests/fixtures/clip/models/clip-tiny-gelu-p16}
IMAGE=${IMAGE:-tests/fixtures/images/img0_photo_640x480_rgb.jpg}
echo "\$ mmfuse classify --model $MODEL --image $IMAGE --label cat --label dog --label 'magnetic tile'"
build/mmfuse classify --model "$MODEL" --image "$IMAGE" --label cat --label dog --label "magnetic tile"
echo "\$ mmfuse embed --model $MODEL --text 'a photo of a cat' --image $IMAGE"
build/mmfuse embed --model "$MODEL" --text "a photo of a cat" --image "$IMAGE"
