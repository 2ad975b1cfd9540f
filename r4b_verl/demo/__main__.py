"""Build the offline demo assets: ``python -m r4b_verl.demo --out DIR``.

Writes into DIR:
  model/          a tiny Qwen2 causal LM and its byte-level BPE tokenizer (chat template,
                  ``<think>``/``</think>`` tokens), loadable with ``AutoModelForCausalLM`` /
                  ``AutoTokenizer`` -> ``actor_rollout_ref.model.path=DIR/model``. Random weights,
                  then (unless ``--anneal-steps 0``) a few seconds of bi-mode annealing SFT on
                  toy math (``r4b_verl.demo.warmup``) so both modes and the auto choice exist.
  train.parquet   toy-math prompts in verl's RL format -> ``data.train_files``
  val.parquet     -> ``data.val_files``
  anneal.parquet  (with ``--n-anneal N``) N labelled toy rows with ``reasoning`` and ``answer`` columns:
                  the input of ``python -m r4b_verl.anneal.build`` for stage 1 on verl's SFT trainer
                  (what ``make demo`` does, with ``--anneal-steps 0``)
Nothing is downloaded.
"""

from __future__ import annotations

import argparse
import os
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m r4b_verl.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="output directory (created if missing)")
    parser.add_argument("--n-train", type=int, default=64, help="training prompts (default 64)")
    parser.add_argument("--n-val", type=int, default=16, help="validation prompts (default 16)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--anneal-steps",
        type=int,
        default=400,
        help="bi-mode annealing SFT steps on the random model (default 400; 0 keeps it random)",
    )
    parser.add_argument("--n-anneal", type=int, default=0,
                        help="also write anneal.parquet: this many labelled rows for stage 1 (default 0: none)")
    args = parser.parse_args(argv)

    from r4b_verl.demo.tiny import build_model, build_tokenizer
    from r4b_verl.demo.toy_math import build_dataset

    out = os.path.abspath(args.out)
    model_dir = os.path.join(out, "model")
    model = build_model(model_dir, build_tokenizer(), seed=args.seed)  # saves model and tokenizer
    # Load the tokenizer back the way verl does. With the model's config.json next to it,
    # AutoTokenizer resolves the Qwen2 tokenizer class, which pre-tokenizes digits one by one,
    # unlike the object build_tokenizer returns: annealing must see the token ids verl will feed
    # the model.
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    note = "random weights"
    if args.anneal_steps > 0:
        from r4b_verl.demo.warmup import anneal

        losses = anneal(model, tokenizer, steps=args.anneal_steps, seed=args.seed)
        note = f"bi-mode annealing: {args.anneal_steps} SFT steps, loss {losses[0]:.2f} -> {losses[-1]:.2f}"
        model.save_pretrained(model_dir)
    paths = build_dataset(out, n_train=args.n_train, n_val=args.n_val, seed=args.seed)
    if args.n_anneal > 0:
        from r4b_verl.demo.toy_math import annealing_rows, write_parquet

        paths["anneal"] = write_parquet(annealing_rows(args.n_anneal, seed=args.seed), os.path.join(out, "anneal.parquet"))
    n_params = sum(p.numel() for p in model.parameters())
    print(f"model      {model_dir}  ({n_params / 1e3:.0f}k parameters, vocab {len(tokenizer)}; {note})")
    for split, path in paths.items():
        print(f"{split:<10} {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
