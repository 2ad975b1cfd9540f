"""Build the offline multimodal demo assets: ``python -m r4b_verl.demo.multimodal --out DIR``.

Writes into DIR:
  model/          a tiny random Qwen2.5-VL (vision tower + LM, ``r4b_verl.demo.tiny_vl``) with its
                  processor as remote code -> ``actor_rollout_ref.model.path=DIR/model`` with
                  ``actor_rollout_ref.model.trust_remote_code=true``; then (unless ``--anneal-steps 0``)
                  a few seconds of bi-mode annealing SFT on the shape-counting images, so the model
                  writes ``\\boxed{}`` counts in both modes and some rewards differ within a group.
  train.parquet   shape-counting image questions in verl's RL format (``r4b_verl.demo.shapes``)
  val.parquet
Nothing is downloaded. Train with ``main_ppo +recipe=r4b_bpo_mm_cpu`` (recipes/run_demo_mm_cpu.sh).
"""

from __future__ import annotations

import argparse
import io
import os
import random
import sys

from r4b_verl.think import THINK_CLOSE, THINK_OPEN

THINK_SHARE = {"easy": 0.3, "hard": 0.7}  # share of reasoning samples per level, as the text demo


def annealing_samples(n: int, seed: int = 0) -> list[tuple[list[dict], str, object]]:
    """``n`` (messages, completion, image) triples: shape questions answered in one of the two modes."""
    from PIL import Image

    from r4b_verl.demo.shapes import make_rows

    rng = random.Random(seed)
    samples = []
    for row in make_rows(n, "anneal", seed=seed):
        level, answer = row["extra_info"]["level"], row["reward_model"]["ground_truth"]
        text = row["prompt"][0]["content"].replace("<image>", "")
        messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": text}]}]
        thought = "Let me count the shapes one by one." if rng.random() < THINK_SHARE[level] else ""
        block = f"{THINK_OPEN}\n{thought}\n{THINK_CLOSE}" if thought else f"{THINK_OPEN}\n\n{THINK_CLOSE}"
        image = Image.open(io.BytesIO(row["images"][0]["bytes"])).convert("RGB")
        samples.append((messages, f"{block}\n\nThe answer is \\boxed{{{answer}}}.<|im_end|>", image))
    return samples


def anneal(model, processor, steps: int = 150, batch_size: int = 16, lr: float = 5e-3, seed: int = 0) -> list[float]:
    """Train ``model`` in place on image samples through its processor (loss on the completion only)."""
    import torch

    torch.manual_seed(seed)
    samples = annealing_samples(steps * batch_size, seed=seed + 1)
    tokenizer = processor.tokenizer
    optim = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a 0.2M-parameter model: more threads only add contention on small CPUs
    model.train()
    losses = []
    try:
        for step in range(steps):
            batch = samples[step * batch_size : (step + 1) * batch_size]
            prompts = [processor.apply_chat_template(m, add_generation_prompt=True, tokenize=False)
                       for m, _, _ in batch]
            inputs = processor(
                text=[p + c for p, (_, c, _) in zip(prompts, batch, strict=True)], images=[img for _, _, img in batch],
                padding=True, return_tensors="pt",
            )
            labels = inputs["input_ids"].clone()
            labels[inputs["attention_mask"] == 0] = -100
            for row, (prompt, (_, completion, img)) in enumerate(zip(prompts, batch, strict=True)):
                n_completion = len(tokenizer.encode(completion, add_special_tokens=False))
                n_real = int(inputs["attention_mask"][row].sum())
                start = labels.shape[1] - n_real if tokenizer.padding_side == "left" else 0
                labels[row, : start + n_real - n_completion] = -100
            loss = model(**inputs, labels=labels).loss
            optim.zero_grad()
            loss.backward()
            optim.step()
            losses.append(loss.item())
    finally:
        torch.set_num_threads(threads)
        model.eval()
    return losses


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m r4b_verl.demo.multimodal", description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="output directory (created if missing)")
    parser.add_argument("--n-train", type=int, default=32, help="training prompts (default 32)")
    parser.add_argument("--n-val", type=int, default=8, help="validation prompts (default 8)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--anneal-steps", type=int, default=150,
                        help="bi-mode annealing SFT steps on the random model (default 150; 0 keeps it random)")
    args = parser.parse_args(argv)

    from r4b_verl.demo.shapes import build_dataset
    from r4b_verl.demo.tiny_vl import build_tiny_vl

    out = os.path.abspath(args.out)
    model_dir = os.path.join(out, "model")
    model, processor = build_tiny_vl(model_dir, seed=args.seed)  # processor loaded back as verl loads it
    note = "random weights"
    if args.anneal_steps > 0:
        losses = anneal(model, processor, steps=args.anneal_steps, seed=args.seed)
        note = f"bi-mode annealing: {args.anneal_steps} SFT steps on images, loss {losses[0]:.2f} -> {losses[-1]:.2f}"
        model.save_pretrained(model_dir)
    paths = build_dataset(out, n_train=args.n_train, n_val=args.n_val, seed=args.seed)
    n_params = sum(p.numel() for p in model.parameters())
    n_vision = sum(p.numel() for n, p in model.named_parameters() if "visual" in n)
    print(f"model      {model_dir}  ({n_params / 1e3:.0f}k parameters, {n_vision / 1e3:.0f}k in the vision tower; "
          f"{note})")
    for split, path in paths.items():
        print(f"{split:<10} {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
