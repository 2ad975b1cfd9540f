#!/usr/bin/env bash
# Multimodal CPU demo of r4b-verl (what `make demo-mm` runs): a tiny random Qwen2.5-VL and
# shape-counting image questions built offline, then R-4B's BPO with verl 0.9.1's real trainer on CPU
# for 2 steps with an image in every prompt, and the summary table.
# What was needed and why: r4b_verl/backends/cpu/README.md, "Multimodal on CPU". No GPU, no download.
#
#   recipes/run_demo_mm_cpu.sh [extra Hydra overrides...]
# Environment: PYTHON (default python), OUT (default ${TMPDIR:-/tmp}/r4b-verl-demo-mm), STEPS (default 2).
set -euo pipefail

PYTHON=${PYTHON:-python}
if [[ $PYTHON == */* && $PYTHON != /* ]]; then PYTHON="$PWD/$PYTHON"; fi  # survives the cd below
OUT=${OUT:-${TMPDIR:-/tmp}/r4b-verl-demo-mm}
[[ $OUT == /* ]] || OUT="$PWD/$OUT"
STEPS=${STEPS:-2}

"$PYTHON" -m r4b_verl.demo.outdir "$OUT"  # empties OUT only if a demo made it (its marker)
mkdir -p "$OUT/run"
echo "== building tiny multimodal assets in $OUT/assets (Qwen2.5-VL-style model + processor, shape images)"
"$PYTHON" -m r4b_verl.demo.multimodal --out "$OUT/assets"

echo "== training: python -m verl.trainer.main_ppo +recipe=r4b_bpo_mm_cpu ($STEPS steps)"
cd "$OUT/run"  # verl writes relative paths under the working directory
status=0
"$PYTHON" -m verl.trainer.main_ppo +recipe=r4b_bpo_mm_cpu \
    actor_rollout_ref.model.path="$OUT/assets/model" \
    data.train_files="$OUT/assets/train.parquet" \
    data.val_files="$OUT/assets/val.parquet" \
    trainer.total_training_steps="$STEPS" \
    "trainer.logger=[console,file]" \
    trainer.validation_data_dir="$OUT/val_generations" \
    trainer.rollout_data_dir="$OUT/rollout" \
    +ray_kwargs.ray_init.runtime_env.env_vars.VERL_FILE_LOGGER_PATH="$OUT/metrics.jsonl" \
    "$@" || status=$?

if [[ -s "$OUT/metrics.jsonl" ]]; then
    echo
    echo "== summary (step 0 = validation before training; think rate = auto-mode thinking-trigger rate)"
    "$PYTHON" -m r4b_verl.backends.cpu.summary "$OUT/metrics.jsonl"
    echo "metrics: $OUT/metrics.jsonl   rollouts: $OUT/rollout   explanation: r4b_verl/backends/cpu/README.md"
fi
exit $status
