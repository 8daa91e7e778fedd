#!/usr/bin/env bash
# `make demo`: the main job on the embedded tiny default, end to end, as a phone would run it.
#   1. export every stage to TFLite and quantize it int8 weight-only (parity-gated at each hop)
#   2. synthesise a short music track
#   3. generate a video with the torch-free runtime (LiteRT), with a caption and the music
#   4. verify the runtime against PyTorch (per stage, end to end, video metrics) into a report
set -euo pipefail
PY=${PY:-.venv/bin/python}
OUT=${OUT:-outputs/demo}
IMAGE=${IMAGE:-}  # an input image; default: the built-in test card
PROMPT=${PROMPT:-"moves to the right"}  # the shipped tiny default reads the motion phrase (MODEL_CARD.md)
mkdir -p "$OUT"
if [ -n "$IMAGE" ]; then gen_image=(--image "$IMAGE"); ver_image=(--image "$IMAGE"); else gen_image=(--test-card); ver_image=(); fi
start=$(date +%s)

echo "== 1/4 export tiny -> TFLite, int8-weight-only"
"$PY" -m export.build --target tflite --precision int8-weight-only --out "$OUT/bundle" --overwrite --quiet
echo "== 2/4 music"
"$PY" -m runtime_py.audio --out "$OUT/music.wav" --seconds 2 --overwrite
echo "== 3/4 generate (runtime_py, LiteRT)"
"$PY" -m runtime_py.generate --bundle "$OUT/bundle" --backend tflite "${gen_image[@]}" --prompt "$PROMPT" \
    --text "I2V-Adapter on a phone" --text-start 0.25 --music "$OUT/music.wav" --gif \
    --out "$OUT/video.mp4" --overwrite --quiet
echo "== 4/4 verify against PyTorch"
"$PY" -m evaluation.verify --bundle "$OUT/bundle" --backend tflite "${ver_image[@]}" --prompt "$PROMPT" \
    --out "$OUT/verify" --overwrite --quiet

echo
echo "video:  $OUT/video.mp4 (and video.gif)"
echo "bundle: $OUT/bundle (manifest.json)"
echo "report: $OUT/verify/verify.md"
echo "done in $(( $(date +%s) - start )) s"
