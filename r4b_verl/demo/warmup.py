"""Bi-mode annealing in miniature: a few seconds of SFT that teach the tiny random model both modes.

R-4B's stage 1 trains one model on reasoning samples ``<think>reasoning</think>answer`` and
direct samples with an empty think block, so that stage 2 (BPO) starts from a model that can do
both. This does the same on the toy-math task, so the CPU demo's numbers mean something: the
model writes ``\\boxed{}`` answers in both modes, gets the easy questions right some of the time
(so rewards differ within a group and the actor gets a gradient), and in auto mode chooses
between thinking and not (the thinking-trigger rate is neither 0 nor 1).

Like the paper's labelling, hard questions are mostly taught with reasoning and easy ones
mostly without. Chat format and think strings are those of the ``r4b`` prefix preset
(``r4b_verl/rollout/prefixes.py``): thinking ``<think>\\n...\\n</think>\\n\\n``, non-thinking
``<think>\\n\\n</think>\\n\\n``.
"""

from __future__ import annotations

import random

from r4b_verl.think import THINK_CLOSE, THINK_OPEN

THINK_SHARE = {"easy": 0.3, "hard": 0.7}  # share of reasoning samples per level


def annealing_texts(n: int, seed: int = 0) -> list[tuple[str, str]]:
    """``n`` (prompt, completion) pairs: toy-math questions answered in one of the two modes."""
    from r4b_verl.demo.toy_math import answer_text, draw_operands, question, reasoning

    rng = random.Random(seed)
    pairs = []
    for i in range(n):
        level, a, b = draw_operands(rng, i)
        prompt = f"<|im_start|>user\n{question(a, b)}<|im_end|>\n<|im_start|>assistant\n"
        thought = reasoning(a, b) if rng.random() < THINK_SHARE[level] else ""
        block = f"{THINK_OPEN}\n{thought}\n{THINK_CLOSE}" if thought else f"{THINK_OPEN}\n\n{THINK_CLOSE}"
        completion = f"{block}\n\n{answer_text(a, b)}<|im_end|>"
        pairs.append((prompt, completion))
    return pairs


def anneal(model, tokenizer, steps: int = 400, batch_size: int = 32, lr: float = 5e-3, seed: int = 0) -> list[float]:
    """Train ``model`` in place on bi-mode samples (loss on the completion only); returns the losses."""
    import torch

    torch.manual_seed(seed)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a 0.1M-parameter model: more threads only add contention on small CPUs
    try:
        return _anneal(model, tokenizer, steps, batch_size, lr, seed)
    finally:
        torch.set_num_threads(threads)


def _anneal(model, tokenizer, steps: int, batch_size: int, lr: float, seed: int) -> list[float]:
    import torch

    pairs = annealing_texts(steps * batch_size, seed=seed + 1)
    pad = tokenizer.pad_token_id
    optim = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    model.train()
    losses = []
    for step in range(steps):
        batch = pairs[step * batch_size : (step + 1) * batch_size]
        seqs, labels = [], []
        for prompt, completion in batch:
            p = tokenizer.encode(prompt, add_special_tokens=False)
            c = tokenizer.encode(completion, add_special_tokens=False)
            seqs.append(p + c)
            labels.append([-100] * len(p) + c)
        width = max(map(len, seqs))
        ids = torch.full((len(seqs), width), pad, dtype=torch.long)
        lab = torch.full((len(seqs), width), -100, dtype=torch.long)
        mask = torch.zeros((len(seqs), width), dtype=torch.long)
        for row, (s, lbl) in enumerate(zip(seqs, labels)):
            ids[row, : len(s)] = torch.tensor(s)
            lab[row, : len(lbl)] = torch.tensor(lbl)
            mask[row, : len(s)] = 1
        loss = model(input_ids=ids, attention_mask=mask, labels=lab).loss
        optim.zero_grad()
        loss.backward()
        optim.step()
        losses.append(loss.item())
    model.eval()
    return losses
