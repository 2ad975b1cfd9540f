"""Label queries reasoning-intensive or direct, as R-4B's stage 1 does, by sampling through verl's own validation.

    python -m r4b_verl.anneal.label --annotator MODEL --data RL.parquet --out LABELLED.parquet
        [--n 8] [--mode no_think] [--temperature 1.0] [--recipe r4b_bpo] [--chunk-rows 2000]
        [--label-column COL] [--judge-prompt TEXT | --no-judge] [-- HYDRA...]

Objective queries (a row with ``reward_model.ground_truth``): the annotator answers each ``--n`` times
(default 8) in ``--mode`` (default ``no_think``: a query is direct when it can be answered without
reasoning), the project's rewards score the answers, and the query is **reasoning** if none is correct,
else **direct**. Subjective queries (no ground truth) take the user's ``--label-column`` where it holds a
label; the others are put to the annotator with a **judge prompt** (``--judge-prompt``, ``{query}`` marks
the query's text; images stay with the row) that asks for ``\boxed{1}`` (needs reasoning) or ``\boxed{0}``,
scored against the gold ``1`` by the same rewards in the same verl run: the query is **reasoning** when
most of the ``--n`` votes say so (``--no-judge`` leaves them ``unlabelled``).

The sampling is verl's, the evaluation's command (``r4b_verl.evaluate.run.eval_command``) in one mode:
``python -m verl.trainer.main_ppo +recipe=... trainer.val_only=true bpo.val_mode=<mode>
actor_rollout_ref.rollout.val_kwargs.n=<n>`` with sampling on and ``trainer.validation_data_dir``, vLLM on GPU,
the CPU backend with ``--recipe r4b_bpo_cpu``. The BPO
worker writes each row's ``extra_info.index`` into the dump (``bpo_index``); the labeller gives every
row of a chunk its position there, so nothing depends on verl's per-run uids.

Output: the input rows plus ``label``, ``n_correct`` (correct samples; for a judged row its votes for
reasoning), ``n_sampled`` and ``label_source`` (``samples``, ``judge``, ``user`` or empty); a summary per
data source. Resumable:
labels are appended chunk by chunk to ``OUT.labels.jsonl`` and a restart skips the rows already there.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter, defaultdict
from pathlib import Path

import pandas as pd

REASONING, DIRECT, UNLABELLED = "reasoning", "direct", "unlabelled"
# Judged rows are scored against this gold by the default (math) route: "1" = the query needs reasoning.
JUDGE_SOURCE, JUDGE_YES = "r4b_label_judge", "1"
JUDGE_PROMPT = ("Does a good answer to the query below need step-by-step reasoning first? Do not answer the "
                "query. Reply \\boxed{1} if it needs reasoning, \\boxed{0} if it can be answered directly."
                "\n\nQuery: {query}")


def has_ground_truth(row) -> bool:
    gt = (row.get("reward_model") or {}).get("ground_truth") if isinstance(row.get("reward_model"), dict) else None
    return gt is not None and not (isinstance(gt, str) and not gt.strip())


def label_from_samples(n_correct: int) -> str:
    """R-4B's rule: no correct sample among the annotator's means the query needs reasoning."""
    return REASONING if n_correct == 0 else DIRECT


def label_from_votes(n_yes: int, n_sampled: int) -> str:
    """A judged query needs reasoning when most of the annotator's votes say so."""
    return REASONING if 2 * n_yes > n_sampled else DIRECT


def judge_row(row: dict, template: str, where: str) -> dict:
    """The judge's single-turn RL row for a subjective query ``row`` (its last user message is the query)."""
    users = [m for m in row.get("prompt", []) if isinstance(m, dict) and m.get("role") == "user"]
    if not users or not isinstance(users[-1].get("content"), str):
        raise ValueError(f"{where}: no user message with text content to put to the judge")
    prompt = [{"role": "user", "content": template.replace("{query}", users[-1]["content"])}]
    return {**row, "data_source": JUDGE_SOURCE, "prompt": prompt,
            "reward_model": {"style": "rule", "ground_truth": JUDGE_YES}}


def counts_from_dump(dump_dir: Path) -> dict[int, tuple[int, int]]:
    """Row position -> (correct samples, samples) from a chunk's validation dump."""
    from r4b_verl.evaluate.dump import jsonl_lines, newest_dump
    from r4b_verl.think import INDEX_INFO_KEY

    counts: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    path = newest_dump(dump_dir)
    for number, text in jsonl_lines(path):
        line = json.loads(text)
        if INDEX_INFO_KEY not in line:
            raise ValueError(
                f"{path}:{number}: no {INDEX_INFO_KEY}: the annotator run did not use r4b-verl's BPO worker")
        position = int(line[INDEX_INFO_KEY])
        counts[position][0] += float(line.get("acc", line.get("score", 0.0))) >= 1.0
        counts[position][1] += 1
    return {k: (v[0], v[1]) for k, v in counts.items()}


def run_chunk(rows: pd.DataFrame, work: Path, args, overrides: list[str]) -> dict[int, tuple[int, int]]:
    """Sample the annotator on ``rows`` (positions in their ``extra_info.index``) with verl; counts per position."""
    from r4b_verl.evaluate.run import eval_command, run_validation

    work.mkdir(parents=True, exist_ok=True)
    data = work / "rows.parquet"
    rows.to_parquet(data)
    sampling = "actor_rollout_ref.rollout.val_kwargs"
    cmd = eval_command(args.annotator, str(data), work, args.recipe, args.n, val_mode=args.mode, overrides=(
        f"{sampling}.do_sample=true", f"{sampling}.temperature={args.temperature}", f"{sampling}.top_p=1.0",
        *overrides))
    print("== labelling:", " ".join(cmd), flush=True)
    code = run_validation(cmd, work, "label.log")
    if code != 0:
        raise RuntimeError(
            f"the annotator run for {len(rows)} rows failed (exit {code}); its output: {work / 'label.log'}")
    return counts_from_dump(work / "generations")


def summary(labelled: pd.DataFrame) -> str:
    lines = ["| data_source | rows | reasoning | direct | unlabelled | direct share |", "|---|---|---|---|---|---|"]
    for source, group in labelled.groupby("data_source", sort=True):
        c = Counter(group["label"])
        judged = c[REASONING] + c[DIRECT]
        share = f"{c[DIRECT] / judged:.0%}" if judged else ""
        lines.append(f"| {source} | {len(group)} | {c[REASONING]} | {c[DIRECT]} | {c[UNLABELLED]} | {share} |")
    return "\n".join(lines)


def label(args, overrides: list[str]) -> pd.DataFrame:
    rows = pd.read_parquet(args.data).reset_index(drop=True)
    for column in ("prompt", "data_source"):
        if column not in rows:
            raise ValueError(f"{args.data}: no {column!r} column: not verl RL rows (see r4b_verl/anneal/README.md)")
    out = Path(args.out).resolve()  # verl runs in a directory of its own: every path it gets is absolute
    sidecar = out.with_name(out.name + ".labels.jsonl")
    done: dict[int, dict] = {}
    if sidecar.exists():  # resume: labels of finished chunks
        for text in open(sidecar, encoding="utf-8"):
            if text.strip():
                record = json.loads(text)
                done[int(record["position"])] = record
        print(f"resuming: {len(done)} of {len(rows)} rows already labelled in {sidecar}")

    def user_label(i: int):
        given = rows.iloc[i].get(args.label_column) if args.label_column and args.label_column in rows else None
        return given if given in (REASONING, DIRECT) else None

    template = getattr(args, "judge_prompt", JUDGE_PROMPT)
    if template is not None and "{query}" not in template:
        raise ValueError(f"--judge-prompt must contain {{query}} (where the query's text goes), got {template!r}")
    judged = set()  # subjective rows without the user's label go to the judge (unless --no-judge)
    todo = []
    for i in range(len(rows)):
        if i in done:
            continue
        if has_ground_truth(rows.iloc[i].to_dict()):
            todo.append(i)
        elif template is not None and user_label(i) is None:
            todo.append(i)
            judged.add(i)
    for start in range(0, len(todo), args.chunk_rows):
        positions = todo[start : start + args.chunk_rows]
        records = [judge_row(rows.iloc[p].to_dict(), template, f"{args.data}: row {p}") if p in judged
                   else rows.iloc[p].to_dict() for p in positions]
        chunk = pd.DataFrame(records, columns=rows.columns)
        chunk["extra_info"] = [{**(e if isinstance(e, dict) else {}), "index": p}
                               for e, p in zip(chunk.get("extra_info", [None] * len(chunk)), positions, strict=True)]
        counts = run_chunk(chunk, out.parent / f"{out.name}.work" / f"chunk_{start}", args, overrides)
        with open(sidecar, "a", encoding="utf-8") as f:
            for p in positions:
                n_correct, n_sampled = counts.get(p, (0, 0))
                if n_sampled == 0:
                    raise RuntimeError(f"row {p} of {args.data} got no sample back from the annotator run")
                rule = label_from_votes(n_correct, n_sampled) if p in judged else label_from_samples(n_correct)
                record = {"position": p, "label": rule, "n_correct": n_correct, "n_sampled": n_sampled,
                          "source": "judge" if p in judged else "samples"}
                f.write(json.dumps(record) + "\n")
                done[p] = record
        print(f"labelled {len(done)} of {len(rows)} rows", flush=True)

    labels, correct, sampled, sources = [], [], [], []
    for i in range(len(rows)):
        record = done.get(i)
        if record is None:
            given = user_label(i)
            labels.append(given or UNLABELLED)
            correct.append(None)
            sampled.append(0)
            sources.append("user" if given else "")
        else:
            labels.append(record["label"])
            correct.append(record["n_correct"])
            sampled.append(record["n_sampled"])
            sources.append(record.get("source", "samples"))
    labelled = rows.assign(label=labels, n_correct=pd.array(correct, dtype="Int64"), n_sampled=sampled,
                           label_source=sources)
    out.parent.mkdir(parents=True, exist_ok=True)
    labelled.to_parquet(out)
    return labelled


def main(argv: list[str] | None = None) -> int:
    from r4b_verl.evaluate.run import split_overrides

    argv, overrides = split_overrides(list(sys.argv[1:] if argv is None else argv))
    p = argparse.ArgumentParser(prog="python -m r4b_verl.anneal.label", description=__doc__.splitlines()[0])
    p.add_argument("--annotator", required=True, help="HF path of the annotator model")
    p.add_argument("--data", required=True, help="verl RL parquet rows to label")
    p.add_argument("--out", required=True, help="labelled parquet to write (and OUT.labels.jsonl to resume from)")
    p.add_argument("--n", type=int, default=8, help="annotator samples per query (default 8)")
    p.add_argument("--mode", default="no_think", choices=["no_think", "think", "auto"],
                   help="the annotator's mode (default no_think)")
    p.add_argument("--temperature", type=float, default=1.0, help="sampling temperature (default 1.0)")
    p.add_argument("--recipe", default="r4b_bpo", help="+recipe= (r4b_bpo on GPUs, r4b_bpo_cpu on CPU)")
    p.add_argument("--chunk-rows", type=int, default=2000,
                   help="rows per annotator run: the unit a restart resumes from")
    p.add_argument("--label-column", help="a column with the user's own labels (reasoning|direct) for subjective rows")
    judge = p.add_mutually_exclusive_group()
    judge.add_argument("--judge-prompt", default=JUDGE_PROMPT,
                       help="the annotator's question for subjective rows without a user label; {query} is the "
                            "query's text; the reply \\boxed{1} means reasoning (default: a yes/no question)")
    judge.add_argument("--no-judge", dest="judge_prompt", action="store_const", const=None,
                       help="leave subjective rows without a user label unlabelled")
    args = p.parse_args(argv)
    if args.n < 1 or args.chunk_rows < 1:
        p.error("--n and --chunk-rows must be at least 1")
    try:
        labelled = label(args, overrides)
    except (ValueError, RuntimeError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"\n== labels of {args.data}\n\n{summary(labelled)}\n\nlabelled   {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
