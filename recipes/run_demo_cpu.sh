#!/usr/bin/env bash
# CPU demo of r4b-verl (what `make demo` runs): both R-4B stages on verl 0.9.1's real trainers, on CPU.
#   1. tiny offline assets (tokenizer, random Qwen2, toy-math parquet + labelled annealing rows)
#   2. bi-mode annealing data (python -m r4b_verl.anneal.build)
#   3. stage 1: bi-mode annealing SFT on verl's sft_trainer (recipes/run_anneal.sh, +recipe=r4b_anneal_cpu)
#   4. stage 2: BPO on verl's main_ppo (+recipe=r4b_bpo_cpu) from stage 1's global_step_N/huggingface
# then a summary table and the training curves. What the output means: r4b_verl/backends/cpu/README.md.
# No GPU and no download needed.
#
#   recipes/run_demo_cpu.sh [extra Hydra overrides of stage 2...]
# Environment: PYTHON (default python), OUT (default ${TMPDIR:-/tmp}/r4b-verl-demo), STEPS (BPO steps,
#   default 3), ANNEAL_ROWS (toy questions of stage 1, default 2048: 2 samples each, 32 a step, one epoch).
set -euo pipefail

PYTHON=${PYTHON:-python}
# a relative interpreter path (PYTHON=.venv/bin/python) must survive the cd below; not realpath:
# resolving the venv's symlink would leave the venv
if [[ $PYTHON == */* && $PYTHON != /* ]]; then PYTHON="$PWD/$PYTHON"; fi
OUT=${OUT:-${TMPDIR:-/tmp}/r4b-verl-demo}
[[ $OUT == /* ]] || OUT="$PWD/$OUT"  # every path below is also used after the cd
STEPS=${STEPS:-3}
ANNEAL_ROWS=${ANNEAL_ROWS:-2048}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

rm -rf "$OUT"
mkdir -p "$OUT/run"
echo "== building tiny assets in $OUT/assets (tokenizer, random model, toy-math parquet, $ANNEAL_ROWS annealing rows)"
"$PYTHON" -m r4b_verl.demo --out "$OUT/assets" --anneal-steps 0 --n-anneal "$ANNEAL_ROWS"

# R-4B labels a query reasoning-intensive when its annotator gets no answer right without thinking
# (python -m r4b_verl.anneal.label). The demo's only model is random before stage 1, so it would label
# every question reasoning; the toy rows carry the level's label instead (hard: reasoning, easy: direct),
# and --both-modes gives every question a thinking and a direct sample.
echo
echo "== stage 1 data: python -m r4b_verl.anneal.build (labels from the toy level, both modes per question)"
"$PYTHON" -m r4b_verl.anneal.build --in "$OUT/assets/anneal.parquet" --out "$OUT/assets/sft.parquet" \
    --tokenizer "$OUT/assets/model" --max-length 128 --both-modes

echo
echo "== stage 1: bi-mode annealing SFT, verl.trainer.sft_trainer +recipe=r4b_anneal_cpu (recipes/run_anneal.sh)"
mkdir -p "$OUT/anneal_run"
(cd "$OUT/anneal_run" && VERL_FILE_LOGGER_PATH="$OUT/anneal_metrics.jsonl" PYTHON="$PYTHON" RECIPE=r4b_anneal_cpu OUT="$OUT/anneal" \
    bash "$HERE/run_anneal.sh" "$OUT/assets/model" "$OUT/assets/sft.parquet" \
    data.train_batch_size=32 data.micro_batch_size_per_gpu=32 optim.lr=3.0e-3 \
    "trainer.logger=[console,file]" trainer.project_name=anneal trainer.experiment_name=demo) \
    > "$OUT/anneal.log" 2>&1 || { tail -40 "$OUT/anneal.log"; echo "stage 1 failed: $OUT/anneal.log" >&2; exit 1; }
"$PYTHON" -c 'import json, sys
rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
loss = [(r["step"], r["data"]["train/loss"]) for r in rows if "train/loss" in r.get("data", {})]
print(f"  {loss[-1][0]} SFT steps, train/loss {loss[0][1]:.3f} -> {loss[-1][1]:.3f}") if loss else None' "$OUT/anneal_metrics.jsonl" || true
MODEL="$OUT/anneal/global_step_$(cat "$OUT/anneal/latest_checkpointed_iteration.txt")/huggingface"
echo "annealed model: $MODEL   (log: $OUT/anneal.log)"

echo
echo "== stage 2: python -m verl.trainer.main_ppo +recipe=r4b_bpo_cpu ($STEPS BPO steps from the annealed model)"
status=0
"$PYTHON" -m verl.trainer.main_ppo +recipe=r4b_bpo_cpu \
    actor_rollout_ref.model.path="$MODEL" \
    data.train_files="$OUT/assets/train.parquet" \
    data.val_files="$OUT/assets/val.parquet" \
    trainer.total_training_steps="$STEPS" \
    trainer.default_local_dir="$OUT/checkpoints" \
    trainer.save_freq="$STEPS" \
    "trainer.logger=[console,file]" \
    +ray_kwargs.ray_init.runtime_env.env_vars.VERL_FILE_LOGGER_PATH="$OUT/metrics.jsonl" \
    "$@" || status=$?

if [[ -s "$OUT/metrics.jsonl" ]]; then
    echo
    echo "== summary (step 0 = validation before training; think rate = auto-mode thinking-trigger rate)"
    "$PYTHON" -m r4b_verl.backends.cpu.summary "$OUT/metrics.jsonl"
    echo "metrics: $OUT/metrics.jsonl   explanation: r4b_verl/backends/cpu/README.md"
    echo
    echo "== training curves (python -m r4b_verl.evaluate curves)"
    "$PYTHON" -m r4b_verl.evaluate curves "$OUT/metrics.jsonl" --out "$OUT" || status=$?
    if [[ -d "$OUT/checkpoints/global_step_$STEPS" ]]; then
        echo
        echo "evaluate the trained model in think, no_think and auto mode:"
        echo "  make eval JOB_PYTHON=$PYTHON RECIPE=r4b_bpo_cpu MODEL=$MODEL DATA=$OUT/assets/val.parquet \\"
        echo "      CHECKPOINT=$OUT/checkpoints/global_step_$STEPS EVAL_OUT=$OUT/eval"
    fi
fi
exit $status
