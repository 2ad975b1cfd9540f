"""``python -m r4b_verl.anneal.think_tokens``: a tokenizer without think tags gets them, then stage 1 and BPO run.

The tokenizer without tags is the demo's (``r4b_verl.demo.tiny.build_tokenizer``) with its two added
think tokens taken out of ``tokenizer.json``; the models are tiny random Qwen2 LMs (tied and untied,
with and without padding rows beyond the tokenizer, as Qwen checkpoints have) and the tiny Qwen2.5-VL.
The last test goes through ``recipes/run_anneal.sh`` with ``THINK_TOKENS=add`` (stage 1 on verl's SFT
trainer) into one BPO step with ``bpo.prefix_preset=r4b``.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import torch

from r4b_verl.anneal.think_tokens import MARKER, main
from r4b_verl.rollout.prefixes import PRESETS, PrefixConfigError, check_prefixes
from r4b_verl.think import THINK_CLOSE, THINK_OPEN

# the stage-1 test's helpers: its subprocess runner, metrics reader and bi-mode SFT rows
_spec = importlib.util.spec_from_file_location(
    "_sft_recipe_helpers", Path(__file__).with_name("test_sft_recipe_on_cpu.py")
)
sft = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(sft)

TAGS = (THINK_OPEN, THINK_CLOSE)
PADDED_ROWS = 400  # a checkpoint padded beyond its tokenizer, not to a multiple of 64 (so a resize would show)


def _strip_think_tags(tokenizer_dir: Path) -> None:
    """Remove the added think tokens from a saved tokenizer (they are its last ids, so no id moves)."""
    path = tokenizer_dir / "tokenizer.json"
    data = json.loads(path.read_text())
    data["added_tokens"] = [t for t in data["added_tokens"] if t["content"] not in TAGS]
    path.write_text(json.dumps(data))


@pytest.fixture(scope="module")
def tagless_tokenizer_dir(tmp_path_factory) -> Path:
    from r4b_verl.demo.tiny import build_tokenizer

    out = tmp_path_factory.mktemp("tagless_tokenizer")
    build_tokenizer(out, qwen_split=True)
    _strip_think_tags(out)
    return out


def _tokenizer(path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(path))


def _text_model(tokenizer_dir: Path, out: Path, tied: bool, rows: int | None = None, seed: int = 0) -> Path:
    """A random Qwen2 LM with the tagless tokenizer; ``rows`` embedding rows (default: exactly the tokenizer's)."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from r4b_verl.demo.tiny import lm_config

    shutil.copytree(tokenizer_dir, out)
    tokenizer = _tokenizer(out)
    torch.manual_seed(seed)
    config = Qwen2Config(**{**lm_config(tokenizer), "vocab_size": rows or len(tokenizer), "tie_word_embeddings": tied})
    Qwen2ForCausalLM(config).save_pretrained(str(out))
    return out


def _load_lm(path):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(str(path), dtype=torch.float32)


def _convert(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_the_r4b_preset_refuses_a_tokenizer_without_think_tags(tagless_tokenizer_dir):
    from r4b_verl.anneal.contract import ContractError, check_template

    tokenizer = _tokenizer(tagless_tokenizer_dir)
    assert all(len(tokenizer.encode(tag, add_special_tokens=False)) > 1 for tag in TAGS)
    with pytest.raises(PrefixConfigError, match="this model has no <think> token"):
        check_prefixes(PRESETS["r4b"], tokenizer)
    with pytest.raises((ContractError, PrefixConfigError)):  # the stage-1 data builder's --tokenizer check too
        check_template(PRESETS["r4b"], tokenizer)


@pytest.mark.parametrize(
    "tied, rows",
    [(True, None), (False, None), (True, PADDED_ROWS), (False, PADDED_ROWS)],
    ids=["tied-resized", "untied-resized", "tied-padded", "untied-padded"],
)
def test_conversion_adds_single_tokens_with_spelling_rows(tagless_tokenizer_dir, tmp_path, capsys, tied, rows):
    source = _text_model(tagless_tokenizer_dir, tmp_path / "base", tied=tied, rows=rows)
    before_tok, before = _tokenizer(source), _load_lm(source)
    n = len(before_tok)
    spelling = {tag: before_tok.encode(tag, add_special_tokens=False) for tag in TAGS}
    code, out, err = _convert(capsys, "--model", str(source), "--out", str(tmp_path / "conv"))
    assert code == 0, err

    tokenizer = _tokenizer(tmp_path / "conv")
    ids = {tag: tokenizer.encode(tag, add_special_tokens=False) for tag in TAGS}
    assert ids == {THINK_OPEN: [n], THINK_CLOSE: [n + 1]}, ids
    assert not set(ids[THINK_OPEN] + ids[THINK_CLOSE]) & set(tokenizer.all_special_ids)  # added, NOT special
    text = f"{THINK_OPEN}\nLet me add.\n{THINK_CLOSE}\n\nThe answer is 2."
    assert tokenizer.decode(tokenizer.encode(text, add_special_tokens=False), skip_special_tokens=True) == text
    check_prefixes(PRESETS["r4b"], tokenizer)  # the worker-start check now passes
    check_prefixes(PRESETS["qwen3"], tokenizer)

    model = _load_lm(tmp_path / "conv")
    expected_rows = (
        rows or 384
    )  # n + 2 = 336 rows needed, padded to a multiple of 64; a padded checkpoint keeps its 400
    assert model.get_input_embeddings().weight.shape[0] == expected_rows == model.config.vocab_size
    assert (f"resized {n} -> 384 rows" if rows is None else f"not resized: the {rows} rows hold the new ids") in out
    assert f"{THINK_OPEN} = {n}, {THINK_CLOSE} = {n + 1}" in out and "run_anneal.sh" in out

    old_in, new_in = before.get_input_embeddings().weight, model.get_input_embeddings().weight
    old_out, new_out = before.get_output_embeddings().weight, model.get_output_embeddings().weight
    assert (new_out.data_ptr() == new_in.data_ptr()) is tied
    for tag, new_id in ((THINK_OPEN, n), (THINK_CLOSE, n + 1)):
        assert torch.equal(new_in[new_id], old_in[spelling[tag]].float().mean(dim=0)), tag
        assert torch.equal(new_out[new_id], old_out[spelling[tag]].float().mean(dim=0)), tag
    if not tied:  # the output rows are the mean of the OUTPUT pieces, not a copy of the input rows
        assert not torch.equal(new_out[n], new_in[n])
    # every other row and every other weight bit for bit
    assert torch.equal(new_in[:n], old_in[:n]) and torch.equal(new_out[:n], old_out[:n])
    if rows:
        assert torch.equal(new_in[n + 2 :], old_in[n + 2 :]) and torch.equal(new_out[n + 2 :], old_out[n + 2 :])
    old_state, new_state = before.state_dict(), model.state_dict()
    embedding_keys = {"model.embed_tokens.weight", "lm_head.weight"}
    assert set(old_state) == set(new_state)
    assert all(torch.equal(old_state[k], new_state[k]) for k in old_state if k not in embedding_keys)

    files = set(os.listdir(tmp_path / "conv"))
    assert {"model.safetensors", "config.json", "tokenizer.json", MARKER} <= files
    marker = json.loads((tmp_path / "conv" / MARKER).read_text())
    assert marker["source"] == os.path.realpath(source) and marker["ids"] == {THINK_OPEN: n, THINK_CLOSE: n + 1}


def test_mean_init_takes_the_mean_of_the_token_rows(tagless_tokenizer_dir, tmp_path, capsys):
    source = _text_model(tagless_tokenizer_dir, tmp_path / "base", tied=False, rows=PADDED_ROWS)
    before, n = _load_lm(source), len(_tokenizer(source))
    code, out, err = _convert(capsys, "--model", str(source), "--out", str(tmp_path / "conv"), "--init", "mean")
    assert code == 0, err
    model = _load_lm(tmp_path / "conv")
    for get in ("get_input_embeddings", "get_output_embeddings"):
        old, new = getattr(before, get)().weight, getattr(model, get)().weight
        mean = old[:n].float().mean(dim=0)  # the tokenizer's rows only, not the untrained padding
        assert torch.equal(new[n], new[n + 1]), get
        torch.testing.assert_close(new[n], mean, rtol=0, atol=1e-6)  # summed in chunks: not bit-equal to mean()
        assert not torch.allclose(new[n], old.float().mean(dim=0), atol=1e-4)  # the padding rows are left out
    assert "mean of all token rows" in out


def test_a_bf16_checkpoint_stays_bf16(tagless_tokenizer_dir, tmp_path, capsys):
    from safetensors.torch import load_file
    from transformers import Qwen2ForCausalLM

    source = _text_model(tagless_tokenizer_dir, tmp_path / "base", tied=True)
    Qwen2ForCausalLM.from_pretrained(str(source), dtype=torch.bfloat16).save_pretrained(str(source))
    before = load_file(str(source / "model.safetensors"))["model.embed_tokens.weight"]
    assert before.dtype == torch.bfloat16
    tokenizer = _tokenizer(source)
    n, pieces = len(tokenizer), tokenizer.encode(THINK_CLOSE, add_special_tokens=False)
    code, _, err = _convert(capsys, "--model", str(source), "--out", str(tmp_path / "conv"))
    assert code == 0, err
    after = load_file(str(tmp_path / "conv" / "model.safetensors"))["model.embed_tokens.weight"]
    assert after.dtype == torch.bfloat16 and torch.equal(after[:n], before)
    assert torch.equal(after[n + 1], before[pieces].float().mean(dim=0).to(torch.bfloat16))  # float32 mean, then cast


def _tagless_vl(tokenizer_dir: Path, out: Path) -> Path:
    """The tiny Qwen2.5-VL (``r4b_verl.demo.tiny_vl``) on the tagless tokenizer."""
    from r4b_verl.demo import tiny_vl

    tokenizer = _tokenizer(tokenizer_dir)
    # what tiny_vl.build_vl_tokenizer adds to the demo tokenizer
    tokenizer.add_special_tokens({"additional_special_tokens": ["<|im_start|>", *tiny_vl.VISION_TOKENS]})
    tokenizer.chat_template = tiny_vl.CHAT_TEMPLATE
    tiny_vl.build_vl_model(tokenizer).save_pretrained(str(out))
    tiny_vl.save_processor(out, tokenizer, tiny_vl.build_image_processor())
    return out


def test_vl_model_keeps_its_processor_and_vision_tower(tagless_tokenizer_dir, tmp_path, capsys):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    source = _tagless_vl(tagless_tokenizer_dir, tmp_path / "vl")
    before = AutoModelForImageTextToText.from_pretrained(str(source), dtype=torch.float32)
    n = len(_tokenizer(source))
    code, out, err = _convert(capsys, "--model", str(source), "--out", str(tmp_path / "conv"), "--trust-remote-code")
    assert code == 0, err
    assert "processor (Qwen2_5_VLProcessor)" in out

    processor = AutoProcessor.from_pretrained(str(tmp_path / "conv"), trust_remote_code=True)
    tokenizer = _tokenizer(tmp_path / "conv")
    for tok in (processor.tokenizer, tokenizer):  # the processor's tokenizer and the saved one agree
        assert [tok.encode(tag, add_special_tokens=False) for tag in TAGS] == [[n], [n + 1]]
    check_prefixes(PRESETS["r4b"], processor.tokenizer, processor)
    model = AutoModelForImageTextToText.from_pretrained(str(tmp_path / "conv"), dtype=torch.float32)
    assert type(model).__name__ == "Qwen2_5_VLForConditionalGeneration"
    assert model.config.text_config.vocab_size == model.get_input_embeddings().weight.shape[0] == 384
    old_state, new_state = before.state_dict(), model.state_dict()
    vision = [k for k in old_state if "visual" in k]
    assert vision and all(torch.equal(old_state[k], new_state[k]) for k in vision)


def test_tokenizer_with_the_tags_is_left_alone(tmp_path):
    """The CLI itself, as a user runs it, on the demo model (Qwen3-like: both tags are tokens)."""
    from r4b_verl.demo.tiny import build_model, build_tokenizer

    build_model(tmp_path / "qwen3_like", build_tokenizer(qwen_split=True))
    proc = subprocess.run(
        [
            sft.PYTHON,
            "-m",
            "r4b_verl.anneal.think_tokens",
            "--model",
            str(tmp_path / "qwen3_like"),
            "--out",
            str(tmp_path / "conv"),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "nothing to add" in proc.stdout and not (tmp_path / "conv").exists()


def test_refusals_name_the_fix(tagless_tokenizer_dir, tmp_path, capsys):
    source = _text_model(tagless_tokenizer_dir, tmp_path / "base", tied=True)

    code, _, err = _convert(capsys, "--model", str(tmp_path / "missing"), "--out", str(tmp_path / "o1"))
    assert code == 1 and "no such directory" in err and "checkpoint directory" in err

    weights_only = tmp_path / "weights_only"
    _load_lm(source).save_pretrained(str(weights_only))
    code, _, err = _convert(capsys, "--model", str(weights_only), "--out", str(tmp_path / "o2"))
    assert code == 1 and "no tokenizer loads" in err and "tokenizer.save_pretrained" in err

    half = tmp_path / "half"
    shutil.copytree(source, half)
    tokenizer = _tokenizer(half)
    tokenizer.add_tokens([THINK_OPEN])
    tokenizer.save_pretrained(str(half))
    code, _, err = _convert(capsys, "--model", str(half), "--out", str(tmp_path / "o3"))
    assert code == 1 and "half pair" in err and "Add '</think>' yourself" in err

    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "keep.txt").write_text("mine")
    code, _, err = _convert(capsys, "--model", str(source), "--out", str(busy))
    assert code == 1 and "not empty" in err and "--force" in err
    code, _, err = _convert(capsys, "--model", str(source), "--out", str(source), "--force")
    assert code == 1 and "is the --model directory" in err
    assert not any((tmp_path / name).exists() for name in ("o1", "o2", "o3"))
    assert os.listdir(busy) == ["keep.txt"]


def test_run_anneal_refuses_think_tokens_on_several_nodes(tmp_path):
    def run_anneal(**env):
        return subprocess.run(["bash", str(sft.REPO / "recipes" / "run_anneal.sh"), str(tmp_path / "m"), "d.parquet"],
                              cwd=tmp_path, env={**os.environ, "PYTHON": sft.PYTHON, **env}, capture_output=True,
                              text=True, check=False, timeout=60)

    proc = run_anneal(THINK_TOKENS="add", NNODES="2", RDZV_ENDPOINT="localhost:1")
    assert proc.returncode == 2 and "race" in proc.stderr and "python -m r4b_verl.anneal.think_tokens" in proc.stderr
    proc = run_anneal(THINK_TOKENS="yes", NNODES="1")
    assert proc.returncode == 2 and "the only value is 'add'" in proc.stderr


SFT_ROWS, SFT_STEPS = 8, 2  # data.train_batch_size 4 of the CPU overlay: one epoch


def test_stage1_with_think_tokens_add_then_a_bpo_step(tagless_tokenizer_dir, tmp_path):
    """THINK_TOKENS=add through stage 1 (run_anneal.sh, verl's SFT trainer) into one BPO step with the r4b preset."""
    from r4b_verl.demo.toy_math import build_dataset

    base = _text_model(tagless_tokenizer_dir, tmp_path / "base", tied=True)
    with pytest.raises(PrefixConfigError):
        check_prefixes(PRESETS["r4b"], _tokenizer(base))
    train = sft._write_parquet(tmp_path / "sft.parquet", sft._rows(SFT_ROWS, seed=0))
    out = tmp_path / "anneal"
    env = {k: v for k, v in os.environ.items() if k != "VERL_PLATFORM"}
    env.update(PYTHON=sft.PYTHON, RECIPE="r4b_anneal_cpu", OUT=str(out), THINK_TOKENS="add")
    (tmp_path / "sft").mkdir()
    sft._run(
        [
            "bash",
            str(sft.REPO / "recipes" / "run_anneal.sh"),
            str(base),
            str(train),
            f"trainer.total_training_steps={SFT_STEPS}",
        ],
        cwd=tmp_path / "sft",
        log=tmp_path / "sft.log",
        env=env,
    )
    log = (tmp_path / "sft.log").read_text(errors="replace")
    converted = out / "base_with_think_tokens"
    assert f"added {THINK_OPEN} = " in log and (converted / MARKER).is_file()
    assert f"'path': '{converted}'" in log  # verl's printed config: stage 1 trained the converted model

    hf = out / f"global_step_{SFT_STEPS}" / "huggingface"
    annealed = _tokenizer(hf)
    ids = [annealed.encode(tag, add_special_tokens=False) for tag in TAGS]
    assert ids == [[len(annealed) - 2], [len(annealed) - 1]]
    check_prefixes(PRESETS["r4b"], annealed)  # what the BPO worker checks at start
    start, trained = _load_lm(converted).get_input_embeddings().weight, _load_lm(hf).get_input_embeddings().weight
    assert trained.shape == start.shape and not torch.equal(trained[ids[0][0]], start[ids[0][0]])  # SFT moved the tag

    # the marker names its source: the same OUT with another model is refused before anything runs
    other = _text_model(tagless_tokenizer_dir, tmp_path / "other", tied=False)
    proc = subprocess.run(
        ["bash", str(sft.REPO / "recipes" / "run_anneal.sh"), str(other), str(train)],
        cwd=tmp_path / "sft",
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert proc.returncode == 2 and "holds a conversion of" in proc.stderr

    data = build_dataset(tmp_path / "rl_data", n_train=8, n_val=4)
    metrics_path = tmp_path / "rl.metrics.jsonl"
    (tmp_path / "rl").mkdir()
    sft._run([
        sft.PYTHON, "-m", "verl.trainer.main_ppo", "+recipe=r4b_bpo_cpu", f"actor_rollout_ref.model.path={hf}",
        f"data.train_files={data['train']}", f"data.val_files={data['val']}", "bpo.prefix_preset=r4b",
        "trainer.total_training_steps=1", "trainer.val_before_train=false", "trainer.test_freq=-1",
        f"trainer.default_local_dir={tmp_path / 'rl_ckpt'}", "trainer.logger=[console,file]",
        f"+ray_kwargs.ray_init.runtime_env.env_vars.VERL_FILE_LOGGER_PATH={metrics_path}",
    ], cwd=tmp_path / "rl", log=tmp_path / "rl.log")  # fmt: skip
    metrics = sft._read_metrics(metrics_path)
    assert sorted(s for s, m in metrics.items() if "training/global_step" in m) == [1]
    step = metrics[1]
    assert step["bpo/think/count"] > 0 and step["bpo/no_think/count"] > 0
    assert math.isfinite(step["actor/grad_norm"])
