#!/usr/bin/env bash
# R-4B stage 1, bi-mode annealing SFT, on one node (what `make anneal` runs):
#   recipes/run_anneal.sh MODEL DATA [extra Hydra overrides...]
# runs  torchrun --standalone --nnodes=1 --nproc-per-node=$NPROC -m verl.trainer.sft_trainer \
#           +recipe=$RECIPE model.path=MODEL data.train_files=DATA [data.val_files=$VAL] ...
# and prints the HF model directory the RL stage (+recipe=r4b_bpo) takes as actor_rollout_ref.model.path.
# Environment: PREFLIGHT (0: skip the preflight), PREFLIGHT_ONLY (1: stop after it), PYTHON (default python), RECIPE (default r4b_anneal; r4b_anneal_cpu runs on CPU),
#   NPROC (processes = GPUs of this node; default 8, 1 with a CPU recipe), VAL (validation parquet, optional),
#   OUT (trainer.default_local_dir; default checkpoints/$RECIPE under the current directory),
#   NNODES (default 1) and RDZV_ENDPOINT (host:port of the c10d rendezvous; with it, this node joins a
#   multi-node run instead of --standalone: recipes/anneal.sbatch sets both on every node), RDZV_ID,
#   THINK_TOKENS (opt-in; only value: add): for a base model whose tokenizer has no single-token <think> /
#   </think> (Qwen2.5, Qwen2.5-VL as far as we know; r4b_verl/anneal/README.md, Model families), first run
#   `python -m r4b_verl.anneal.think_tokens --model MODEL --out $OUT/base_with_think_tokens` (adds the tags as
#   tokens, sizes and initialises their embedding rows) and train from that directory; a directory holding a
#   finished conversion of the same MODEL (its r4b_think_tokens.json) is reused; a model that has the tags
#   is trained as it is. THINK_TOKENS_ARGS: extra options of that command (--init mean, --trust-remote-code).
#   One node only: with NNODES>1 run the command once yourself and pass its --out as MODEL.
set -euo pipefail

if (( $# < 2 )); then
    echo "usage: $0 MODEL DATA [hydra overrides...]   (MODEL: path or HF id; DATA: bi-mode SFT parquet)" >&2
    exit 2
fi
MODEL=$1 DATA=$2
shift 2
PYTHON=${PYTHON:-python}
RECIPE=${RECIPE:-r4b_anneal}
OUT=${OUT:-checkpoints/$RECIPE}
VAL=${VAL:-}
if [[ $RECIPE == *_cpu ]]; then
    # verl resolves its platform when the trainer is imported, before Hydra reads the recipe, so the CPU
    # backend (r4b_verl/backends/cpu) is selected by the environment torchrun hands its processes
    export VERL_PLATFORM=${VERL_PLATFORM:-cpu}
    NPROC=${NPROC:-1}
fi
NPROC=${NPROC:-8}
NNODES=${NNODES:-1}
RDZV_ENDPOINT=${RDZV_ENDPOINT:-}
THINK_TOKENS=${THINK_TOKENS:-}

if [[ -n $THINK_TOKENS && $THINK_TOKENS != add ]]; then
    echo "THINK_TOKENS=$THINK_TOKENS: the only value is 'add' (unset: no conversion)" >&2
    exit 2
fi
if [[ -n $THINK_TOKENS ]] && (( NNODES > 1 )); then
    # every node runs this script: they would all write the same directory at once
    echo "THINK_TOKENS=add with NNODES=$NNODES: the nodes would race to write the converted model." >&2
    echo "Convert once first:  $PYTHON -m r4b_verl.anneal.think_tokens --model $MODEL --out DIR" >&2
    echo "then run with MODEL=DIR and without THINK_TOKENS" >&2
    exit 2
fi

# The trainer's overrides, checked first by the preflight (r4b_verl/preflight.py: verl's config conversions,
# the files' messages column, enough rows for a batch) in seconds, before torchrun and a model load.
# PREFLIGHT=0 skips it; PREFLIGHT_ONLY=1 stops after it (make anneal-slurm runs that on the submitting host).
job=(+recipe="$RECIPE" model.path="$MODEL" data.train_files="$DATA" ${VAL:+data.val_files="$VAL"}
     trainer.default_local_dir="$OUT" trainer.n_gpus_per_node="$NPROC" trainer.nnodes="$NNODES" "$@")
if [[ ${PREFLIGHT:-1} != 0 ]]; then
    "$PYTHON" -m r4b_verl.preflight sft "${job[@]}"
fi
[[ ${PREFLIGHT_ONLY:-0} == 0 ]] || exit 0

if [[ -n $THINK_TOKENS ]]; then
    converted="$OUT/base_with_think_tokens"
    marker="$converted/r4b_think_tokens.json"  # r4b_verl.anneal.think_tokens.MARKER, written last
    if [[ -f $marker ]]; then
        src=$MODEL; [[ -d $MODEL ]] && src=$(cd "$MODEL" && pwd -P)
        done_from=$("$PYTHON" -c 'import json, sys; print(json.load(open(sys.argv[1]))["source"])' "$marker")
        if [[ $done_from != "$src" ]]; then
            echo "THINK_TOKENS=add: $converted holds a conversion of $done_from, not of $src: delete it or set OUT" >&2
            exit 2
        fi
        echo "THINK_TOKENS=add: reusing $converted (a finished conversion of $src)"
    else
        # --force: no marker means an interrupted earlier conversion (or none); the directory is this script's
        # shellcheck disable=SC2086  # THINK_TOKENS_ARGS is a list of options
        "$PYTHON" -m r4b_verl.anneal.think_tokens --model "$MODEL" --out "$converted" --force ${THINK_TOKENS_ARGS:-}
    fi
    if [[ -f $marker ]]; then
        MODEL=$converted
        job=("${job[@]/#model.path=*/model.path=$MODEL}")
    fi  # else the model has the tags already: the command said "nothing to add" and wrote nothing
fi

# torch.distributed.run is torchrun, run by $PYTHON so the job uses that interpreter's packages;
# --standalone: rendezvous on localhost, a free port; else every node meets at RDZV_ENDPOINT (c10d)
if [[ -n $RDZV_ENDPOINT ]]; then
    rendezvous=(--nnodes="$NNODES" --rdzv-backend=c10d --rdzv-endpoint="$RDZV_ENDPOINT" --rdzv-id="${RDZV_ID:-r4b-anneal}")
else
    (( NNODES == 1 )) || { echo "NNODES=$NNODES needs RDZV_ENDPOINT=host:port (recipes/anneal.sbatch sets it)" >&2; exit 2; }
    rendezvous=(--standalone --nnodes=1)
fi
"$PYTHON" -m torch.distributed.run "${rendezvous[@]}" --nproc-per-node="$NPROC" \
    -m verl.trainer.sft_trainer "${job[@]}"
[[ ${SLURM_PROCID:-0} == 0 ]] || exit 0  # the checkpoint is reported once, by the first node

tracker="$OUT/latest_checkpointed_iteration.txt"
if [[ -s $tracker ]]; then
    hf="$OUT/global_step_$(cat "$tracker")/huggingface"
    echo
    echo "annealed model (HF format, with tokenizer): $hf"
    rl_recipe=r4b_bpo; [[ $RECIPE == *_cpu ]] && rl_recipe=r4b_bpo_cpu
    echo "next, BPO RL on it:  python -m verl.trainer.main_ppo +recipe=$rl_recipe actor_rollout_ref.model.path=$hf \\"
    echo "    data.train_files=... data.val_files=..."
fi
