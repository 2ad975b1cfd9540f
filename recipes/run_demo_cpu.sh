#!/usr/bin/env bash
# CPU demo of r4b-verl (what `make demo` runs): builds the tiny offline assets, then trains R-4B's
# BPO with verl 0.9.1's real trainer on CPU for a few steps, and prints a summary table.
# What the output means: r4b_verl/backends/cpu/README.md. No GPU and no download needed.
#
#   recipes/run_demo_cpu.sh [extra Hydra overrides...]
# Environment: PYTHON (default python), OUT (default ${TMPDIR:-/tmp}/r4b-verl-demo), STEPS (default 3).
set -euo pipefail

PYTHON=${PYTHON:-python}
# a relative interpreter path (PYTHON=.venv/bin/python) must survive the cd below; not realpath:
# resolving the venv's symlink would leave the venv
if [[ $PYTHON == */* && $PYTHON != /* ]]; then PYTHON="$PWD/$PYTHON"; fi
OUT=${OUT:-${TMPDIR:-/tmp}/r4b-verl-demo}
[[ $OUT == /* ]] || OUT="$PWD/$OUT"  # every path below is also used after the cd
STEPS=${STEPS:-3}

rm -rf "$OUT"
mkdir -p "$OUT/run"
echo "== building tiny assets in $OUT/assets (tokenizer, model + bi-mode annealing, toy-math parquet)"
"$PYTHON" -m r4b_verl.demo --out "$OUT/assets"

echo "== training: python -m verl.trainer.main_ppo +recipe=r4b_bpo_cpu ($STEPS steps)"
cd "$OUT/run"  # verl writes relative paths (outputs/, checkpoints/) under the working directory
status=0
"$PYTHON" -m verl.trainer.main_ppo +recipe=r4b_bpo_cpu \
    actor_rollout_ref.model.path="$OUT/assets/model" \
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
        echo "  make eval JOB_PYTHON=$PYTHON RECIPE=r4b_bpo_cpu MODEL=$OUT/assets/model DATA=$OUT/assets/val.parquet \\"
        echo "      CHECKPOINT=$OUT/checkpoints/global_step_$STEPS EVAL_OUT=$OUT/eval"
    fi
fi
exit $status
