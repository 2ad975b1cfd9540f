"""Build the offline demo assets: ``python -m r4b_verl.demo --out DIR``.

Writes into DIR:
  model/          a tiny Qwen2 causal LM with random weights and its byte-level BPE tokenizer (chat
                  template, ``<think>``/``</think>`` tokens, ``\\n\\n`` one token as in Qwen's), loadable
                  with ``AutoModelForCausalLM`` / ``AutoTokenizer`` -> ``actor_rollout_ref.model.path=DIR/model``.
                  Stage 1 (bi-mode annealing on verl's SFT trainer, ``make demo``) gives it both modes.
  train.parquet   toy-math prompts in verl's RL format -> ``data.train_files``
  val.parquet     -> ``data.val_files``
  anneal.parquet  (with ``--n-anneal N``) N toy rows with ``reasoning``, ``answer`` and the level's label
                  (``level_label``): the input of ``python -m r4b_verl.anneal.label`` / ``anneal.build``
  anneal_both.parquet  (with ``--n-anneal-both M``) M more such rows (other questions), which ``make demo``
                  builds in both modes, so that each level also has samples of its other mode
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
    parser.add_argument("--n-anneal", type=int, default=0,
                        help="also write anneal.parquet: this many toy rows for stage 1 (default 0: none)")
    parser.add_argument("--n-anneal-both", type=int, default=0,
                        help="also write anneal_both.parquet: this many more toy rows (default 0: none)")
    parser.add_argument("--anneal-steps", type=int, default=0, choices=[0],
                        help="only 0 (old command lines): the in-process warm-up is gone, stage 1 runs on verl's "
                             "SFT trainer")
    parser.add_argument("--hidden-size", type=int, default=64, help="model width (default 64)")
    parser.add_argument("--layers", type=int, default=2, help="transformer layers (default 2)")
    args = parser.parse_args(argv)

    from r4b_verl.demo.tiny import build_model, build_tokenizer
    from r4b_verl.demo.toy_math import annealing_rows, build_dataset, write_parquet

    out = os.path.abspath(args.out)
    model_dir = os.path.join(out, "model")
    model = build_model(model_dir, build_tokenizer(qwen_split=True), hidden_size=args.hidden_size,
                        num_layers=args.layers, seed=args.seed)  # saves model and tokenizer
    paths = build_dataset(out, n_train=args.n_train, n_val=args.n_val, seed=args.seed)
    if args.n_anneal > 0:
        paths["anneal"] = write_parquet(annealing_rows(args.n_anneal, seed=args.seed),
                                        os.path.join(out, "anneal.parquet"))
    if args.n_anneal_both > 0:
        paths["anneal_both"] = write_parquet(annealing_rows(args.n_anneal_both, split="anneal_both", seed=args.seed),
                                             os.path.join(out, "anneal_both.parquet"))
    n_params = sum(p.numel() for p in model.parameters())
    print(f"model      {model_dir}  ({n_params / 1e3:.0f}k parameters, vocab {model.config.vocab_size}; "
          "random weights)")
    for split, path in paths.items():
        print(f"{split:<10} {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
