#!/usr/bin/env bash
# CPU demo of r4b-verl (what `make demo` runs): both R-4B stages on verl 0.9.1's real trainers, on CPU.
#   1. tiny offline assets (tokenizer, random Qwen2, toy-math parquet + annealing rows)
#   2. bi-mode annealing data (python -m r4b_verl.anneal.build)
#   3. stage 1: bi-mode annealing SFT on verl's sft_trainer (recipes/run_anneal.sh, +recipe=r4b_anneal_cpu)
#   4. stage 2: BPO on verl's main_ppo (+recipe=r4b_bpo_cpu) from stage 1's global_step_N/huggingface;
#      its validation before training (all three modes, sampled) is stage 1's result
# then a summary of both stages and the training curves. What the output means: r4b_verl/backends/cpu/README.md.
# No GPU and no download needed.
#
#   recipes/run_demo_cpu.sh [extra Hydra overrides of stage 2...]
# Environment: PYTHON (default python), OUT (default ${TMPDIR:-/tmp}/r4b-verl-demo), STEPS (BPO steps,
#   default 3; 0 = stop after stage 1), ANNEAL_STEPS (stage-1 SFT steps of ANNEAL_BATCH samples, default 600), ANNEAL_BATCH (32),
#   ANNEAL_LR (3e-3), ANNEAL_ROWS (toy questions annealed in their label's mode, default 1024),
#   ANNEAL_BOTH_ROWS (other toy questions annealed in both modes, default 256),
#   LABEL_ROWS (label this many toy questions with r4b_verl.anneal.label first: one more verl start; default 0).
set -euo pipefail

PYTHON=${PYTHON:-python}
# a relative interpreter path (PYTHON=.venv/bin/python) must survive the cd below; not realpath:
# resolving the venv's symlink would leave the venv
if [[ $PYTHON == */* && $PYTHON != /* ]]; then PYTHON="$PWD/$PYTHON"; fi
OUT=${OUT:-${TMPDIR:-/tmp}/r4b-verl-demo}
[[ $OUT == /* ]] || OUT="$PWD/$OUT"  # every path below is also used after the cd
STEPS=${STEPS:-3}
ANNEAL_STEPS=${ANNEAL_STEPS:-600}
ANNEAL_BATCH=${ANNEAL_BATCH:-32}
ANNEAL_LR=${ANNEAL_LR:-3.0e-3}
ANNEAL_ROWS=${ANNEAL_ROWS:-1024}
ANNEAL_BOTH_ROWS=${ANNEAL_BOTH_ROWS:-256}
LABEL_ROWS=${LABEL_ROWS:-0}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
A="$OUT/assets"
stamp() { date +%s; }
T0=$(stamp)

"$PYTHON" -m r4b_verl.demo.outdir "$OUT"  # empties OUT only if a demo made it (its marker)
mkdir -p "$OUT/run"
echo "== building tiny assets in $A (tokenizer, random model, toy-math parquet, $ANNEAL_ROWS + $ANNEAL_BOTH_ROWS annealing rows)"
"$PYTHON" -m r4b_verl.demo --out "$A" --n-anneal "$ANNEAL_ROWS" --n-anneal-both "$ANNEAL_BOTH_ROWS"
T_ASSETS=$(stamp)

# R-4B labels a query reasoning-intensive when its annotator gets no answer right without thinking
# (python -m r4b_verl.anneal.label). The demo's only model is random before stage 1, so it labels every
# question reasoning: with LABEL_ROWS the demo runs the labeller on that many questions to show it, and
# anneals on the labels of the toy level either way (hard: reasoning, easy: direct, column level_label).
if (( LABEL_ROWS > 0 )); then
    echo
    echo "== labelling $LABEL_ROWS toy questions with the random model: python -m r4b_verl.anneal.label (verl val_only)"
    "$PYTHON" -c 'import sys, pandas as pd; pd.read_parquet(sys.argv[1]).head(int(sys.argv[3])).to_parquet(sys.argv[2])' \
        "$A/anneal.parquet" "$A/label_in.parquet" "$LABEL_ROWS"
    "$PYTHON" -m r4b_verl.anneal.label --annotator "$A/model" --data "$A/label_in.parquet" --out "$A/labelled.parquet" \
        --n 4 --recipe r4b_bpo_cpu > "$OUT/label.log" 2>&1 || { tail -40 "$OUT/label.log"; echo "labelling failed: $OUT/label.log" >&2; exit 1; }
    sed -n '/^|/p' "$OUT/label.log"
fi
T_LABEL=$(stamp)

# Each level in its label's mode (anneal.parquet), plus other questions in both modes (anneal_both.parquet),
# so that both modes exist on both levels: with the defaults, easy questions are 5/6 direct samples, hard
# ones 5/6 thinking (the auto-mode choice stage 1 should learn), and each level has its other mode too.
echo
echo "== stage 1 data: python -m r4b_verl.anneal.build (labels of the toy level; a second set in both modes)"
"$PYTHON" -m r4b_verl.anneal.build --in "$A/anneal.parquet" --out "$A/sft_labelled.parquet" --label-key level_label \
    --tokenizer "$A/model" --max-length 128 | tail -4
"$PYTHON" -m r4b_verl.anneal.build --in "$A/anneal_both.parquet" --out "$A/sft_both.parquet" --label-key level_label \
    --tokenizer "$A/model" --max-length 128 --both-modes | tail -4
T_BUILD=$(stamp)

echo
echo "== stage 1: bi-mode annealing SFT, verl.trainer.sft_trainer +recipe=r4b_anneal_cpu (recipes/run_anneal.sh, $ANNEAL_STEPS steps)"
mkdir -p "$OUT/anneal_run"
(cd "$OUT/anneal_run" && VERL_FILE_LOGGER_PATH="$OUT/anneal_metrics.jsonl" PYTHON="$PYTHON" RECIPE=r4b_anneal_cpu OUT="$OUT/anneal" \
    bash "$HERE/run_anneal.sh" "$A/model" "[$A/sft_labelled.parquet,$A/sft_both.parquet]" \
    data.train_batch_size="$ANNEAL_BATCH" data.micro_batch_size_per_gpu="$ANNEAL_BATCH" optim.lr="$ANNEAL_LR" \
    trainer.total_epochs=1000 trainer.total_training_steps="$ANNEAL_STEPS" \
    "trainer.logger=[console,file]" trainer.project_name=anneal trainer.experiment_name=demo) \
    > "$OUT/anneal.log" 2>&1 || { tail -40 "$OUT/anneal.log"; echo "stage 1 failed: $OUT/anneal.log" >&2; exit 1; }
MODEL="$OUT/anneal/global_step_$(cat "$OUT/anneal/latest_checkpointed_iteration.txt")/huggingface"
echo "annealed model: $MODEL   (log: $OUT/anneal.log)"
T_SFT=$(stamp)
if [[ "$STEPS" == 0 ]]; then  # stage 1 only (make compare starts every method from this checkpoint)
    echo "STEPS=0: stage 1 only; stage 1 took $((T_SFT - T_BUILD)) s"
    exit 0
fi
cd "$OUT/run"  # verl writes relative paths (outputs/, checkpoints/) under the working directory

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
    trainer.test_freq="$STEPS" \
    bpo.val_mode=all \
    trainer.validation_data_dir="$OUT/val_generations" \
    trainer.rollout_data_dir="$OUT/rollouts" \
    "trainer.logger=[console,file]" \
    +ray_kwargs.ray_init.runtime_env.env_vars.VERL_FILE_LOGGER_PATH="$OUT/metrics.jsonl" \
    "$@" || status=$?
T_BPO=$(stamp)

if [[ -s "$OUT/val_generations/0.jsonl" ]]; then
    echo
    echo "== stage 1 (bi-mode annealing SFT) summary: the annealed model before any BPO step"
    "$PYTHON" -m r4b_verl.demo.stage1 "$OUT/anneal_metrics.jsonl" "$OUT/val_generations/0.jsonl" --json "$OUT/stage1.json" || status=$?
fi

if [[ -s "$OUT/metrics.jsonl" ]]; then
    echo
    echo "== stage 2 (BPO) summary (step 0 = validation before training; think rate = auto-mode thinking-trigger rate)"
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
T_END=$(stamp)
echo
echo "time: assets $((T_ASSETS - T0)) s, labelling $((T_LABEL - T_ASSETS)) s, stage-1 data $((T_BUILD - T_LABEL)) s, stage 1 $((T_SFT - T_BUILD)) s, stage 2 $((T_BPO - T_SFT)) s, summary $((T_END - T_BPO)) s; total $((T_END - T0)) s"
exit $status
