"""Stage 1 on CPU: ``+recipe=r4b_anneal_cpu`` with verl 0.9.1's SFT trainer, then stage 2 from its output.

The tiny random model (``python -m r4b_verl.demo``) is annealed on a bi-mode SFT
parquet written here, through ``recipes/run_anneal.sh`` (torchrun --standalone, one CPU process);
then ``main_ppo +recipe=r4b_bpo_cpu`` trains one BPO step from ``global_step_N/huggingface``.
Observed from the outside: verl's file logger, the checkpoint directory, transformers.
About 2 minutes on 2 cores (most of it the RL run's Ray start-up).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

PYTHON = sys.executable
REPO = Path(__file__).resolve().parents[2]
RUN_TIMEOUT_S = 600
N_ROWS, BATCH, EPOCHS = 32, 4, 2  # batch: data.train_batch_size of the CPU overlay
STEPS = N_ROWS // BATCH * EPOCHS
THINK_OPEN, THINK_CLOSE = "<think>", "</think>"


def _compose(recipe: str, *overrides: str):
    from hydra import compose, initialize_config_module

    with initialize_config_module("verl.trainer.config", version_base=None):
        return compose("sft_trainer_engine", overrides=[f"+recipe={recipe}", *overrides])


def _rows(n: int, seed: int) -> list[dict]:
    """R-4B's bi-mode mix in verl's multi-turn format: the mode is written into the assistant content."""
    import random

    from r4b_verl.demo.toy_math import question

    rng = random.Random(seed)
    rows = []
    for i in range(n):
        a, b = rng.randint(0, 99), rng.randint(0, 99)
        think = i % 2 == 0
        block = (f"{THINK_OPEN}\nLet me add {a} and {b} step by step.\n{THINK_CLOSE}\n\n" if think
                 else f"{THINK_OPEN}\n\n{THINK_CLOSE}\n\n")
        rows.append({
            "messages": [{"role": "user", "content": question(a, b)},
                         {"role": "assistant", "content": f"{block}The answer is \\boxed{{{a + b}}}."}],
            "enable_thinking": think,
        })  # fmt: skip
    return rows


def _write_parquet(path: Path, rows: list[dict]) -> Path:
    import pandas as pd

    pd.DataFrame(rows).to_parquet(path)
    return path


def _run(cmd: list[str], cwd: Path, log: Path, env: dict | None = None) -> None:
    env = dict(env if env is not None else os.environ, PYTHONUNBUFFERED="1")
    with open(log, "w") as out:
        proc = subprocess.run(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, timeout=RUN_TIMEOUT_S)
    if proc.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-60:])
        pytest.fail(f"{' '.join(map(str, cmd[:4]))} ... exited {proc.returncode}; last lines of {log}:\n{tail}")


def _read_metrics(path: Path) -> dict[int, dict]:
    steps: dict[int, dict] = {}
    for line in path.read_text().splitlines():
        if line.strip():
            row = json.loads(line)
            steps.setdefault(int(row["step"]), {}).update(row["data"])
    return steps


def _assistant_loss(model_dir: Path, tokenizer, rows: list[dict]) -> float:
    """Mean next-token loss on the assistant turns (think block included), computed with transformers alone."""
    import torch
    from transformers import AutoModelForCausalLM

    # verl writes "dtype": "bfloat16" into the saved config although the weights are fp32: ask for fp32
    model = AutoModelForCausalLM.from_pretrained(model_dir, torch_dtype=torch.float32).eval()
    total, count = 0.0, 0
    for row in rows:
        user, assistant = row["messages"]
        prompt = tokenizer.apply_chat_template([user], tokenize=False, add_generation_prompt=True)
        full = tokenizer.apply_chat_template([user, assistant], tokenize=False)
        ids = tokenizer(full, return_tensors="pt").input_ids
        n_prompt = len(tokenizer(prompt).input_ids)
        with torch.no_grad():
            logits = model(ids).logits[0, :-1]
        losses = torch.nn.functional.cross_entropy(logits, ids[0, 1:], reduction="none")[n_prompt - 1 :]
        total, count = total + losses.sum().item(), count + losses.numel()
    return total / count


@pytest.fixture(scope="module")
def anneal(tmp_path_factory):
    root = tmp_path_factory.mktemp("anneal_cpu")
    assets = root / "assets"
    _run([PYTHON, "-m", "r4b_verl.demo", "--out", str(assets)], cwd=root, log=root / "assets.log")
    train_rows, val_rows = _rows(N_ROWS, seed=0), _rows(8, seed=1)
    train = _write_parquet(root / "sft_train.parquet", train_rows)
    val = _write_parquet(root / "sft_val.parquet", val_rows)
    metrics, out = root / "sft.metrics.jsonl", root / "sft_ckpt"
    # the script, not the test, must select the CPU backend: VERL_PLATFORM is left unset here
    env = {k: v for k, v in os.environ.items() if k != "VERL_PLATFORM"}
    env.update(PYTHON=PYTHON, RECIPE="r4b_anneal_cpu", VAL=str(val), OUT=str(out), VERL_FILE_LOGGER_PATH=str(metrics))
    (root / "sft").mkdir()
    _run(["bash", str(REPO / "recipes" / "run_anneal.sh"), str(assets / "model"), str(train),
          f"trainer.total_epochs={EPOCHS}", "trainer.logger=[console,file]"],
         cwd=root / "sft", log=root / "sft.log", env=env)  # fmt: skip
    return {"root": root, "assets": assets, "out": out, "metrics": _read_metrics(metrics),
            "log": (root / "sft.log").read_text(errors="replace"), "rows": train_rows}  # fmt: skip


def test_recipes_compose_with_the_sft_trainer_config():
    cfg = _compose("r4b_anneal")
    assert "hf_model" in cfg.checkpoint.save_contents
    assert cfg.data.enable_thinking_default is None  # verl's own default is the string "none" (truthy)
    assert cfg.model.custom_chat_template and cfg.trainer.device == "cuda"
    cpu = _compose("r4b_anneal_cpu")
    assert cpu.model.custom_chat_template == cfg.model.custom_chat_template
    assert (cpu.engine.strategy, cpu.data.num_workers, cpu.engine.use_torch_compile) == ("fsdp2", 0, False)
    assert cpu.model.override_config.attn_implementation == "eager"
    assert dict(cpu.engine.mixed_precision) == {"param_dtype": "fp32", "reduce_dtype": "fp32", "buffer_dtype": "fp32"}


def test_cpu_recipe_without_verl_platform_names_it(monkeypatch):
    from omegaconf import OmegaConf
    from omegaconf.errors import InterpolationResolutionError

    monkeypatch.delenv("VERL_PLATFORM", raising=False)
    with pytest.raises(InterpolationResolutionError, match="VERL_PLATFORM"):
        OmegaConf.to_container(_compose("r4b_anneal_cpu"), resolve=True)
    monkeypatch.setenv("VERL_PLATFORM", "cpu")
    assert _compose("r4b_anneal_cpu").trainer.device == "cpu"


def test_template_trains_the_think_block_verbatim(tmp_path):
    """verl renders each message alone; with the recipe's template both modes' think blocks are trained as written."""
    from transformers import AutoTokenizer
    from verl.utils.dataset.multiturn_sft_dataset import MultiTurnSFTDataset

    from r4b_verl.demo.tiny import build_tokenizer

    build_tokenizer(tmp_path / "tok")
    cfg = _compose("r4b_anneal_cpu")
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "tok")
    tokenizer.chat_template = cfg.model.custom_chat_template  # what HFModelConfig does with the key
    rows = _rows(2, seed=3)
    dataset = MultiTurnSFTDataset(str(_write_parquet(tmp_path / "rows.parquet", rows)), tokenizer, cfg.data)
    for i, row in enumerate(rows):
        item = dataset[i]  # also runs verl's sanity_check: per-message rendering == whole conversation
        trained = item["input_ids"][item["loss_mask"].bool()].tolist()
        assert tokenizer.decode(trained) == row["messages"][1]["content"] + "<|im_end|>\n", i
        assert tokenizer.decode(item["input_ids"].tolist()) == tokenizer.apply_chat_template(row["messages"],
                                                                                             tokenize=False)
    image = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "what is it?"}]}]
    assert tokenizer.apply_chat_template(image, tokenize=False) == (
        "<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>what is it?<|im_end|>\n"
    )


def test_sft_loss_falls(anneal):
    metrics = anneal["metrics"]
    train = [metrics[s]["train/loss"] for s in sorted(metrics) if "train/loss" in metrics[s]]
    assert len(train) == STEPS, f"expected {STEPS} logged steps, got {len(train)}"
    assert all(math.isfinite(x) for x in train)
    first, last = sum(train[:3]) / 3, sum(train[-3:]) / 3
    assert last < first - 0.5, f"train/loss did not fall: {train}"
    assert math.isfinite(metrics[STEPS]["val/loss"]) and metrics[STEPS]["val/loss"] < first
    assert "Platform override from VERL_PLATFORM: cpu" in anneal["log"]  # verl's message: the script selected CPU


def test_hf_model_saved_with_tokenizer_and_trained_weights(anneal):
    from transformers import AutoTokenizer

    out = anneal["out"]
    assert (out / "latest_checkpointed_iteration.txt").read_text().strip() == str(STEPS)
    hf = out / f"global_step_{STEPS}" / "huggingface"
    assert json.loads((hf / "config.json").read_text()).get("dtype") == "bfloat16"  # verl 0.9.1's trap, still there
    tokenizer = AutoTokenizer.from_pretrained(hf)
    assert tokenizer.chat_template == _compose("r4b_anneal_cpu").model.custom_chat_template  # RL renders prompts alike
    assert tokenizer.convert_tokens_to_ids(THINK_OPEN) != tokenizer.unk_token_id
    before = _assistant_loss(anneal["assets"] / "model", tokenizer, anneal["rows"])
    after = _assistant_loss(hf, tokenizer, anneal["rows"])
    assert after < before - 0.5, f"saved weights are not the trained ones: loss {before:.3f} -> {after:.3f}"
    assert str(hf) in anneal["log"]  # the script prints the RL stage's model path


def test_bpo_trains_one_step_from_the_annealed_model(anneal):
    root, assets = anneal["root"], anneal["assets"]
    hf = anneal["out"] / f"global_step_{STEPS}" / "huggingface"
    metrics_path = root / "rl.metrics.jsonl"
    (root / "rl").mkdir()
    cmd = [
        PYTHON, "-m", "verl.trainer.main_ppo", "+recipe=r4b_bpo_cpu",
        f"actor_rollout_ref.model.path={hf}",
        f"data.train_files={assets / 'train.parquet'}", f"data.val_files={assets / 'val.parquet'}",
        "trainer.total_training_steps=1", "trainer.val_before_train=false", "trainer.test_freq=-1",
        f"trainer.default_local_dir={root / 'rl_ckpt'}", "trainer.logger=[console,file]",
        f"+ray_kwargs.ray_init.runtime_env.env_vars.VERL_FILE_LOGGER_PATH={metrics_path}",
    ]  # fmt: skip
    _run(cmd, cwd=root / "rl", log=root / "rl.log")
    metrics = _read_metrics(metrics_path)
    assert sorted(s for s, m in metrics.items() if "training/global_step" in m) == [1]
    step = metrics[1]
    # actor (FSDP) and rollout (hf_cpu, its own from_pretrained) loaded the same weights from the HF dir
    assert step["training/rollout_probs_diff_valid"] == 1.0 and step["training/rollout_probs_diff_max"] < 1e-3
    assert step["bpo/think/count"] > 0 and step["bpo/no_think/count"] > 0
    assert math.isfinite(step["actor/grad_norm"])
