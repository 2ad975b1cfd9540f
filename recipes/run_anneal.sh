#!/usr/bin/env bash
# R-4B stage 1, bi-mode annealing SFT, on one node (what `make anneal` runs):
#   recipes/run_anneal.sh MODEL DATA [extra Hydra overrides...]
# runs  torchrun --standalone --nnodes=1 --nproc-per-node=$NPROC -m verl.trainer.sft_trainer \
#           +recipe=$RECIPE model.path=MODEL data.train_files=DATA [data.val_files=$VAL] ...
# and prints the HF model directory the RL stage (+recipe=r4b_bpo) takes as actor_rollout_ref.model.path.
# Environment: PYTHON (default python), RECIPE (default r4b_anneal; r4b_anneal_cpu runs on CPU),
#   NPROC (processes = GPUs of this node; default 8, 1 with a CPU recipe), VAL (validation parquet, optional),
#   OUT (trainer.default_local_dir; default checkpoints/$RECIPE under the current directory),
#   NNODES (default 1) and RDZV_ENDPOINT (host:port of the c10d rendezvous; with it, this node joins a
#   multi-node run instead of --standalone: recipes/anneal.sbatch sets both on every node), RDZV_ID.
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

# torch.distributed.run is torchrun, run by $PYTHON so the job uses that interpreter's packages;
# --standalone: rendezvous on localhost, a free port; else every node meets at RDZV_ENDPOINT (c10d)
if [[ -n $RDZV_ENDPOINT ]]; then
    rendezvous=(--nnodes="$NNODES" --rdzv-backend=c10d --rdzv-endpoint="$RDZV_ENDPOINT" --rdzv-id="${RDZV_ID:-r4b-anneal}")
else
    (( NNODES == 1 )) || { echo "NNODES=$NNODES needs RDZV_ENDPOINT=host:port (recipes/anneal.sbatch sets it)" >&2; exit 2; }
    rendezvous=(--standalone --nnodes=1)
fi
"$PYTHON" -m torch.distributed.run "${rendezvous[@]}" --nproc-per-node="$NPROC" \
    -m verl.trainer.sft_trainer +recipe="$RECIPE" \
    model.path="$MODEL" data.train_files="$DATA" ${VAL:+data.val_files="$VAL"} \
    trainer.default_local_dir="$OUT" trainer.n_gpus_per_node="$NPROC" trainer.nnodes="$NNODES" \
    "$@"
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
