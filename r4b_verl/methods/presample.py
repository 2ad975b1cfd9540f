"""AdaptThink's presampling: ``Rref(x)``, the reference model's accuracy over K thinking-mode samples per prompt.

    python -m r4b_verl.methods.presample --model REF_MODEL --data train.parquet --out train_rref.parquet
        [--k 16] [--temperature 0.6] [--recipe r4b_bpo] [--chunk-rows 2000] [-- HYDRA...]

The sampling is verl's validation (``trainer.val_only=true bpo.val_mode=think``,
``val_kwargs.n=K``), run and resumed chunk by chunk by the stage-1 labeller
(:func:`r4b_verl.anneal.label.label` with ``--mode think``); each row's share of correct samples is
written into its ``extra_info`` under ``bpo_ref_acc`` (``r4b_verl.think.REF_ACC_KEY``), which the
``adaptthink`` reward reads. Rows without a ground truth are refused (AdaptThink trains on math).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from types import SimpleNamespace

import pandas as pd

from r4b_verl.think import REF_ACC_KEY


def presample(model: str, data: str, out: str, k: int = 16, temperature: float = 0.6, recipe: str = "r4b_bpo",
              chunk_rows: int = 2000, overrides: list[str] | None = None) -> pd.DataFrame:
    """Write ``out``: the rows of ``data`` with ``extra_info[bpo_ref_acc]``; returns them."""
    from r4b_verl.anneal.label import label

    out_path = Path(out).resolve()
    samples = out_path.with_name(out_path.stem + ".samples.parquet")
    args = SimpleNamespace(annotator=model, data=data, out=str(samples), n=k, mode="think", temperature=temperature,
                           recipe=recipe, chunk_rows=chunk_rows, label_column=None)
    labelled = label(args, list(overrides or []))
    missing = labelled.index[labelled["n_sampled"] == 0].tolist()
    if missing:
        raise ValueError(f"{data}: row(s) {missing[:5]} have no ground truth (reward_model.ground_truth): "
                         "AdaptThink's Rref needs a verifiable answer for every training row")
    ref = (labelled["n_correct"].astype(float) / labelled["n_sampled"]).tolist()
    rows = pd.read_parquet(data).reset_index(drop=True)
    rows["extra_info"] = [{**(e if isinstance(e, dict) else {}), REF_ACC_KEY: r}
                          for e, r in zip(rows.get("extra_info", [None] * len(rows)), ref, strict=True)]
    out_path.parent.mkdir(parents=True, exist_ok=True)
    rows.to_parquet(out_path)
    return rows


def main(argv: list[str] | None = None) -> int:
    from r4b_verl.evaluate.run import split_overrides

    argv, overrides = split_overrides(list(sys.argv[1:] if argv is None else argv))
    p = argparse.ArgumentParser(prog="python -m r4b_verl.methods.presample", description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True, help="HF path of the reference model (the RL starting point)")
    p.add_argument("--data", required=True, help="verl RL parquet (the training rows)")
    p.add_argument("--out", required=True, help="parquet to write: the rows with extra_info.bpo_ref_acc")
    p.add_argument("--k", type=int, default=16, help="thinking-mode samples per prompt (AdaptThink: 16)")
    p.add_argument("--temperature", type=float, default=0.6, help="sampling temperature (AdaptThink: 0.6)")
    p.add_argument("--recipe", default="r4b_bpo", help="+recipe= of the sampling run (r4b_bpo_cpu on CPU)")
    p.add_argument("--chunk-rows", type=int, default=2000, help="rows per sampling run (the unit a restart resumes)")
    args = p.parse_args(argv)
    if args.k < 1:
        p.error("--k must be at least 1")
    try:
        rows = presample(args.model, args.data, args.out, args.k, args.temperature, args.recipe, args.chunk_rows,
                         overrides)
    except (ValueError, RuntimeError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    ref = pd.Series([e[REF_ACC_KEY] for e in rows["extra_info"]])
    print(f"Rref: mean {ref.mean():.3f} over {len(rows)} rows ({(ref == 0).mean():.0%} at 0, "
          f"{(ref == 1).mean():.0%} at 1)\nwritten    {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
