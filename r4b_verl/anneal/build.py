"""Bi-mode annealing data: labelled RL rows -> verl multi-turn SFT parquet (R-4B stage 1).

``python -m r4b_verl.anneal.build --in LABELLED.parquet --out SFT.parquet [options]`` (options in
``--help`` and README.md). Each input row is a verl RL row (``prompt`` messages, ``data_source``,
optional ``images``) with the labeller's ``label`` (``reasoning`` | ``direct``) and target texts in
a reasoning column and an answer column. Reasoning-intensive rows become thinking samples, direct
rows non-thinking samples, in the exact token shape the stage-2 ``bpo.prefix_preset`` forces
(:mod:`r4b_verl.anneal.contract`). Output columns: ``messages`` (prompt + one assistant message),
``images`` (when any row has images; ``[]`` on the others, as MultiTurnSFTDataset needs),
``enable_thinking`` (the sample's mode, read per row by MultiTurnSFTDataset), and for bookkeeping
``data_source``, ``label``, ``mode``, ``source_index`` (the input row).

Bad rows are never dropped silently: each one is named (input row, mode, reason) and counted, then
skipped or refused (``on_bad_row``), and listed in a CSV next to the output.
"""

from __future__ import annotations

import argparse
import codecs
import json
import math
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from r4b_verl.anneal.contract import (
    ContractError,
    assistant_content,
    check_rendered,
    check_template,
    render_with_verl,
    stage2_prompt_ids,
)
from r4b_verl.rollout.prefixes import PrefixConfigError, PrefixPreset, resolve_preset
from r4b_verl.think import NO_THINK, THINK, THINK_CLOSE, THINK_OPEN

LABEL_REASONING, LABEL_DIRECT = "reasoning", "direct"
LABEL_MODE = {LABEL_REASONING: THINK, LABEL_DIRECT: NO_THINK}
IMAGE_PLACEHOLDER = "<image>"
PAPER_DIRECT_SHARE = 10.87 / (10.87 + 5.50)  # R-4B's annealing mix, about 0.66

# Why a sample was not written, in the summary's column order.
REASONS = (
    "bad_label",  # label not reasoning / direct
    "bad_prompt",  # prompt is not a list of {role, content: str} messages ending in a non-assistant turn
    "no_answer",  # the answer column is missing, empty or not a string
    "no_reasoning",  # a reasoning-labelled row without reasoning text
    "think_tag_in_text",  # the reasoning or answer already holds <think> / </think>
    "image_count",  # <image> placeholders in the prompt != number of images
    "too_long",  # more tokens than max_length, as MultiTurnSFTDataset counts them
    "contract",  # the rendered sample breaks the stage-2 token contract (contract.check_rendered)
)


class BadRowsError(ValueError):
    """``on_bad_row="refuse"`` and some rows are bad; the message lists them."""


@dataclass
class BadSample:
    row: int  # input row index (position in the input file)
    mode: str | None  # the sample's mode, None when the row gave no sample at all
    data_source: str
    label: str
    reason: str
    detail: str


@dataclass
class BuildResult:
    samples: Any  # pandas.DataFrame, the SFT rows
    bad: list[BadSample]
    summary: Any  # pandas.DataFrame, one row per (data_source, label) plus "all"
    stats: dict = field(default_factory=dict)

    def report(self) -> str:
        import pandas as pd

        with pd.option_context("display.max_columns", None, "display.width", 200):
            lines = [self.summary.to_string(index=False)]
        s = self.stats
        if s.get("direct_share_target") is not None:
            lines.append(
                f"direct share of samples: target {s['direct_share_target']:.3f}, achieved "
                f"{s['direct_share_before_repeat']:.3f} ({s['ratio_dropped']} samples of the majority mode "
                f"down-sampled, seed {s['seed']})"
            )
        lines.append(
            f"samples written: {s['samples']} ({s['think']} think, {s['no_think']} no_think, "
            f"direct repeat x{s['direct_repeat']}); "
            f"direct share {s['direct_share']:.3f}"
        )
        if s.get("direct_token_share") is not None:
            lines.append(
                f"direct share of trained tokens (verl's token-mean loss weight): {s['direct_token_share']:.3f}; "
                f"mean trained tokens think {s['think_tokens_mean']:.1f}, no_think {s['no_think_tokens_mean']:.1f}"
            )
        else:
            lines.append("tokens: not checked (no tokenizer): no length or token-contract check was made")
        if s.get("image_rows_checked_as_text"):
            lines.append(
                f"{s['image_rows_checked_as_text']} image samples were tokenised without a processor: their length "
                "excludes image tokens"
            )
        if self.bad:
            counts = Counter(b.reason for b in self.bad)
            lines.append(f"{len(self.bad)} bad samples skipped: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
        return "\n".join(lines)


def _as_list(value):
    from verl.utils.py_functional import convert_nested_value_to_list_recursive

    return convert_nested_value_to_list_recursive(value)


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _prompt_problem(prompt) -> str | None:
    if not isinstance(prompt, list) or not prompt:
        return f"prompt is {type(prompt).__name__}, not a non-empty list of messages"
    for k, message in enumerate(prompt):
        if not isinstance(message, dict) or "role" not in message or "content" not in message:
            return f"message {k} is not a {{role, content}} dict"
        if not isinstance(message["content"], str):
            # MultiTurnSFTDataset fills <image> placeholders in string content only
            return f"message {k} content is {type(message['content']).__name__}, not a string"
    if prompt[-1]["role"] == "assistant":
        return "the prompt ends with an assistant message (the sample's assistant turn would be the second)"
    return None


def _text(row: dict, key: str) -> str | None:
    value = row.get(key)
    return value if isinstance(value, str) and value.strip() else None


class _Progress:
    def __init__(self, what: str, total: int, every: int):
        self.what, self.total, self.every, self.t0 = what, total, every, time.monotonic()

    def __call__(self, done: int) -> None:
        if self.every and (done % self.every == 0 or done == self.total) and self.total >= self.every:
            rate = done / max(time.monotonic() - self.t0, 1e-9)
            print(f"[anneal.build] {self.what} {done}/{self.total} ({rate:.0f}/s)", file=sys.stderr, flush=True)


def _prefix_preset(preset: str | PrefixPreset, overrides: dict | None) -> PrefixPreset:
    if isinstance(preset, PrefixPreset):
        return preset
    return resolve_preset(preset, **(overrides or {}))


def build(
    labelled,
    *,
    preset: str | PrefixPreset = "r4b",
    prefix_overrides: dict | None = None,
    reasoning_key: str = "reasoning",
    answer_key: str = "answer",
    label_key: str = "label",
    prompt_key: str = "prompt",
    image_key: str = "images",
    direct_share: float | None = None,
    seed: int = 0,
    both_modes: bool = False,
    direct_repeat: int | str = 1,
    tokenizer: Any = None,
    chat_template_kwargs: dict | None = None,
    max_length: int | None = None,
    on_bad_row: str = "refuse",
    enable_thinking_key: str | None = "enable_thinking",
    progress_every: int = 10000,
) -> BuildResult:
    """Build the annealing SFT rows from a labelled ``pandas.DataFrame`` (see the module doc).

    - ``direct_share``: target share of no_think samples (paper: :data:`PAPER_DIRECT_SHARE`); the
      majority mode is down-sampled deterministically (``seed``); None keeps every sample.
    - ``both_modes``: a row with reasoning text gives a think AND a no_think sample.
    - ``direct_repeat``: write each no_think sample this many times (after the ratio), or ``"auto"``:
      the mean trained-token ratio think / no_think, so that under verl's token-mean SFT loss a
      direct sample weighs about as much as a thinking one (needs ``tokenizer``).
    - ``tokenizer``: enables the template check, ``max_length`` and the per-sample token contract.
    - ``on_bad_row``: ``refuse`` raises :class:`BadRowsError` listing the bad rows; ``skip`` drops
      them and returns them in ``BuildResult.bad``.
    """
    import numpy as np
    import pandas as pd

    if on_bad_row not in ("skip", "refuse"):
        raise ValueError(f"on_bad_row must be 'skip' or 'refuse', got {on_bad_row!r}")
    if direct_share is not None and not 0.0 < direct_share < 1.0:
        raise ValueError(f"--direct-share must be in (0, 1), got {direct_share}")
    if max_length is not None and tokenizer is None:
        raise ValueError("--max-length needs --tokenizer: lengths are counted in the model's tokens")
    if direct_repeat == "auto" and tokenizer is None:
        raise ValueError("--direct-repeat auto needs --tokenizer: it is computed from the trained token counts")
    if direct_repeat != "auto" and (not isinstance(direct_repeat, int) or direct_repeat < 1):
        raise ValueError(f"--direct-repeat must be a positive integer or 'auto', got {direct_repeat!r}")
    preset = _prefix_preset(preset, prefix_overrides)
    for key, what in ((prompt_key, "--prompt-key"), (label_key, "--label-key"), (answer_key, "--answer-key")):
        if key not in labelled.columns:
            raise ValueError(
                f"the input has no column {key!r} (name it with {what}); columns: {list(labelled.columns)}"
            )
    labels = labelled[label_key].astype(str)
    if reasoning_key not in labelled.columns and ((labels == LABEL_REASONING).any() or both_modes):
        raise ValueError(
            f"the input has no column {reasoning_key!r}, but it has {LABEL_REASONING}-labelled rows"
            f"{' or --both-modes is on' if both_modes else ''}: name the reasoning column with --reasoning-key; "
            f"columns: {list(labelled.columns)}"
        )
    has_images = image_key in labelled.columns

    bad: list[BadSample] = []
    candidates: list[dict] = []  # one per sample
    rows_in: Counter = Counter()
    progress = _Progress("rows", len(labelled), progress_every)
    for i, row in enumerate(labelled.to_dict("records")):
        source = str(row.get("data_source", ""))
        label = str(row.get(label_key))
        rows_in[(source, label)] += 1

        def flag(reason, detail, mode=None):
            bad.append(BadSample(i, mode, source, label, reason, detail))  # noqa: B023 - called in this iteration only

        progress(i + 1)
        if label not in LABEL_MODE:
            flag("bad_label", f"{label_key}={label!r}, expected {LABEL_REASONING!r} or {LABEL_DIRECT!r}")
            continue
        prompt = _as_list(row.get(prompt_key))
        problem = _prompt_problem(prompt)
        if problem:
            flag("bad_prompt", problem)
            continue
        answer = _text(row, answer_key)
        if answer is None:
            flag("no_answer", f"{answer_key}={row.get(answer_key)!r}")
            continue
        reasoning = _text(row, reasoning_key)
        modes = [LABEL_MODE[label]]
        if both_modes and reasoning is not None:
            modes = [THINK, NO_THINK]
        if THINK in modes and reasoning is None:
            flag("no_reasoning", f"label {label!r} but {reasoning_key}={row.get(reasoning_key)!r}", THINK)
            continue
        used = {answer_key: answer, **({reasoning_key: reasoning} if THINK in modes else {})}
        tagged = [k for k, v in used.items() if THINK_OPEN in v or THINK_CLOSE in v]
        if tagged:
            flag("think_tag_in_text",
                 f"{', '.join(tagged)} already holds {THINK_OPEN} / {THINK_CLOSE}; give the text without the block")
            continue
        images = _as_list(row.get(image_key)) if has_images and not _missing(row.get(image_key)) else []
        images = images if isinstance(images, list) else []
        placeholders = sum(m["content"].count(IMAGE_PLACEHOLDER) for m in prompt)
        if placeholders != len(images):
            flag("image_count", f"{placeholders} {IMAGE_PLACEHOLDER} placeholders in the prompt, {len(images)} images")
            continue
        for mode in modes:
            try:
                content = assistant_content(preset, mode, answer, reasoning or "")
            except ContractError as exc:
                flag("contract", str(exc), mode)
                continue
            sample = {
                "messages": prompt + [{"role": "assistant", "content": content}],
                "images": images,
                "data_source": source,
                "label": label,
                "mode": mode,
                "source_index": i,
                "_prompt": prompt,
                "_reasoning": reasoning or "",
                "_answer": answer,
            }
            if enable_thinking_key:
                sample[enable_thinking_key] = mode == THINK
            candidates.append(sample)

    def refuse_if_bad():
        if bad and on_bad_row == "refuse":
            shown = "\n".join(
                f"  row {b.row}{f' ({b.mode})' if b.mode else ''}: {b.reason}: {b.detail}" for b in bad[:20]
            )
            more = f"\n  ... and {len(bad) - 20} more" if len(bad) > 20 else ""
            counts = ", ".join(f"{k} {v}" for k, v in Counter(b.reason for b in bad).items())
            raise BadRowsError(
                f"{len(bad)} bad samples ({counts}); nothing written:\n{shown}{more}\n"
                "Fix the rows, or rerun with --on-bad-row skip to drop them (they are then listed in the bad-rows CSV)."
            )

    refuse_if_bad()

    trained_tokens: dict[int, int] = {}
    image_as_text = 0
    if tokenizer is not None:
        prefix_tokens = check_template(preset, tokenizer, chat_template_kwargs, enable_thinking_key)
        rendered = render_with_verl(
            candidates, tokenizer, chat_template_kwargs, enable_thinking_key,
            progress=_Progress("tokenised samples", len(candidates), progress_every),
        )
        prompt_cache: dict[int, list[int]] = {}
        kept = []
        for k, (sample, r) in enumerate(zip(candidates, rendered, strict=True)):
            src = sample["source_index"]
            if src not in prompt_cache:
                prompt_cache[src] = stage2_prompt_ids(tokenizer, sample["_prompt"], chat_template_kwargs)
            problem = check_rendered(
                r, sample["mode"], prefix_tokens, prompt_cache[src], tokenizer, sample["_reasoning"], sample["_answer"]
            )
            where = (src, sample["mode"], sample["data_source"], sample["label"])
            if problem:
                bad.append(BadSample(*where, "contract", problem))
                continue
            if max_length is not None and len(r.input_ids) > max_length:
                bad.append(BadSample(*where, "too_long", f"{len(r.input_ids)} tokens > --max-length {max_length}"))
                continue
            image_as_text += bool(sample["images"])
            trained_tokens[k] = int(sum(r.loss_mask))
            kept.append(k)
        candidates = [candidates[k] for k in kept]
        trained_tokens = {j: trained_tokens[k] for j, k in enumerate(kept)}
        refuse_if_bad()

    # Mix ratio: down-sample the majority mode, deterministically, keeping the input order.
    is_direct = np.array([c["mode"] == NO_THINK for c in candidates], dtype=bool)
    n_direct, n_think = int(is_direct.sum()), int((~is_direct).sum())
    keep = np.ones(len(candidates), dtype=bool)
    if direct_share is not None and n_direct and n_think:
        want_direct = round(direct_share * n_think / (1 - direct_share))
        want_think = round((1 - direct_share) * n_direct / direct_share)
        if want_direct < n_direct:
            pool, target = np.flatnonzero(is_direct), want_direct
        else:
            pool, target = np.flatnonzero(~is_direct), min(want_think, n_think)
        rng = np.random.default_rng(seed)
        drop = rng.choice(pool, size=len(pool) - target, replace=False)
        keep[drop] = False
    elif direct_share is not None:
        print(f"[anneal.build] --direct-share {direct_share}: only one mode present ({n_direct} direct, "
              f"{n_think} think), nothing to balance", file=sys.stderr)
    ratio_dropped = Counter((candidates[k]["data_source"], candidates[k]["label"]) for k in np.flatnonzero(~keep))
    chosen = [k for k in range(len(candidates)) if keep[k]]

    direct_share_before = (sum(is_direct[k] for k in chosen) / len(chosen)) if chosen else float("nan")
    tokens_by_mode = {m: [trained_tokens[k] for k in chosen if candidates[k]["mode"] == m and k in trained_tokens]
                      for m in (THINK, NO_THINK)}
    mean_tokens = {m: (sum(v) / len(v) if v else None) for m, v in tokens_by_mode.items()}
    if direct_repeat == "auto":
        if mean_tokens[THINK] and mean_tokens[NO_THINK]:
            direct_repeat = max(1, round(mean_tokens[THINK] / mean_tokens[NO_THINK]))
        else:
            direct_repeat = 1

    out_rows = []
    for k in chosen:
        times = direct_repeat if candidates[k]["mode"] == NO_THINK else 1
        out_rows.extend([candidates[k]] * times)  # copies side by side; the SFT trainer's sampler shuffles
    public = ["messages", "images", enable_thinking_key, "data_source", "label", "mode", "source_index"]
    public = [c for c in public if c]
    if not any(c["images"] for c in out_rows):
        public.remove("images")  # an images column makes MultiTurnSFTDataset demand a processor for every row
    samples = pd.DataFrame([{c: r[c] for c in public} for r in out_rows], columns=public)

    # Summary per (data_source, label): rows in, samples out per mode, dropped by reason.
    written = Counter((r["data_source"], r["label"], r["mode"]) for r in out_rows)
    dropped = Counter((b.data_source, b.label, b.reason) for b in bad)
    table = []
    for source, label in sorted(rows_in):
        entry = {"data_source": source, "label": label, "rows_in": rows_in[(source, label)],
                 "out_think": written[(source, label, THINK)], "out_no_think": written[(source, label, NO_THINK)],
                 "ratio_dropped": ratio_dropped[(source, label)]}
        entry.update({f"bad_{reason}": dropped[(source, label, reason)] for reason in REASONS})
        table.append(entry)
    summary = pd.DataFrame(table)
    if len(summary):
        total = summary.drop(columns=["data_source", "label"]).sum().to_dict()
        total_row = pd.DataFrame([{"data_source": "all", "label": "all", **total}])
        summary = pd.concat([summary, total_row], ignore_index=True)
        summary = summary.loc[:, [c for c in summary.columns if not c.startswith("bad_") or summary[c].any()]]

    n_out_direct = sum(r["mode"] == NO_THINK for r in out_rows)
    token_total = {m: sum(tokens_by_mode[m]) * (direct_repeat if m == NO_THINK else 1) for m in (THINK, NO_THINK)}
    stats = {
        "samples": len(out_rows),
        "think": len(out_rows) - n_out_direct,
        "no_think": n_out_direct,
        "direct_share": n_out_direct / len(out_rows) if out_rows else float("nan"),
        "direct_share_target": direct_share,
        "direct_share_before_repeat": direct_share_before,
        "ratio_dropped": int((~keep).sum()),
        "seed": seed,
        "direct_repeat": direct_repeat,
        "image_rows_checked_as_text": image_as_text,
    }
    if tokenizer is not None and sum(token_total.values()):
        stats.update(
            direct_token_share=token_total[NO_THINK] / sum(token_total.values()),
            think_tokens_mean=mean_tokens[THINK] or 0.0,
            no_think_tokens_mean=mean_tokens[NO_THINK] or 0.0,
        )
    return BuildResult(samples=samples, bad=bad, summary=summary, stats=stats)


def load_tokenizer(path: str, chat_template_file: str | None = None):
    """The model's tokenizer; ``--chat-template FILE`` replaces its template, as model.custom_chat_template does."""
    from verl.utils import hf_tokenizer

    tokenizer = hf_tokenizer(path)
    if chat_template_file:
        tokenizer.chat_template = Path(chat_template_file).read_text()
    return tokenizer


def bad_rows_path(out: str | Path) -> Path:
    out = Path(out)
    return out.with_name(out.stem + ".bad_rows.csv")


def build_file(in_path: str | Path, out_path: str | Path, bad_rows: str | Path | None = None, **kwargs) -> BuildResult:
    """:func:`build` from a parquet file to a parquet file; bad rows (if any) to ``bad_rows`` CSV."""
    import pandas as pd

    in_path = Path(in_path)
    if not in_path.exists():
        raise FileNotFoundError(f"--in {in_path}: no such file")
    labelled = pd.read_parquet(in_path)
    result = build(labelled, **kwargs)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    result.samples.to_parquet(out_path, index=False)
    path = Path(bad_rows) if bad_rows else bad_rows_path(out_path)
    if result.bad:
        pd.DataFrame([b.__dict__ for b in result.bad]).to_csv(path, index=False)
        result.stats["bad_rows_file"] = str(path)
    elif path.exists():
        path.unlink()  # a stale list from an earlier run would name rows that are no longer bad
    return result


def _escaped(text: str) -> str:
    """CLI prefix strings: ``'<think>\\n'`` typed in a shell means a newline."""
    return codecs.decode(text, "unicode_escape")


def _repeat(value: str):
    if value == "auto":
        return value
    try:
        return int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--direct-repeat takes a positive integer or 'auto', got {value!r}") from None


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="python -m r4b_verl.anneal.build",
        description="Labelled RL rows -> verl multi-turn SFT parquet for R-4B's bi-mode annealing (stage 1).",
    )
    ap.add_argument("--in", dest="inp", required=True,
                    help="labelled parquet (verl RL rows + label + reasoning/answer columns)")
    ap.add_argument("--out", required=True, help="SFT parquet to write (data.train_files of verl.trainer.sft_trainer)")
    ap.add_argument("--prefix-preset", default="r4b", choices=["r4b", "qwen3", "r1_distill", "custom"],
                    help="the bpo.prefix_preset stage 2 will use (default r4b)")
    for name in ("think", "no-think", "auto"):
        ap.add_argument(f"--{name}-prefix", type=_escaped,
                        help=f"override as bpo.{name.replace('-', '_')}_prefix (backslash escapes decoded)")
    ap.add_argument("--template-opens", type=_escaped, help="override as bpo.template_opens")
    ap.add_argument("--reasoning-key", default="reasoning", help="column with the reasoning text (default reasoning)")
    ap.add_argument("--answer-key", default="answer", help="column with the answer text (default answer)")
    ap.add_argument("--label-key", default="label", help="column with reasoning|direct (default label)")
    ap.add_argument("--prompt-key", default="prompt", help="column with the prompt messages (default prompt)")
    ap.add_argument("--image-key", default="images", help="column with the images (default images)")
    ap.add_argument("--direct-share", type=float, default=None,
                    help="target share of direct samples, by down-sampling the majority mode "
                         f"(paper: {PAPER_DIRECT_SHARE:.2f}); default keep all")
    ap.add_argument("--seed", type=int, default=0, help="seed of the down-sampling (default 0)")
    ap.add_argument("--both-modes", action="store_true",
                    help="a row with reasoning gives a think and a no_think sample")
    ap.add_argument("--direct-repeat", type=_repeat, default=1,
                    help="write each direct sample N times (after the ratio), or 'auto' = mean think/direct "
                         "trained tokens "
                         "(verl's SFT loss is a token mean; there is no per-row weight). Default 1")
    ap.add_argument("--tokenizer",
                    help="model path / name: enables the template check, --max-length and the token contract")
    ap.add_argument("--chat-template",
                    help="jinja file replacing the tokenizer's template (the same as model.custom_chat_template)")
    ap.add_argument("--chat-template-kwargs", type=json.loads, default=None,
                    help="JSON, as data.apply_chat_template_kwargs")
    ap.add_argument("--max-length", type=int, help="samples longer than this many tokens are bad (use data.max_length)")
    ap.add_argument("--on-bad-row", choices=["skip", "refuse"], default="refuse",
                    help="refuse (default): write nothing and list the bad rows; skip: drop and list them")
    ap.add_argument("--bad-rows", help="CSV listing the bad rows (default OUT_STEM.bad_rows.csv)")
    ap.add_argument("--enable-thinking-key", default="enable_thinking",
                    help="per-row column for MultiTurnSFTDataset (data.enable_thinking_key); '' to write none")
    ap.add_argument("--progress-every", type=int, default=10000, help="progress line every N rows (0: none)")
    return ap


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    overrides = {k: getattr(args, k) for k in ("think_prefix", "no_think_prefix", "auto_prefix", "template_opens")}
    tokenizer = load_tokenizer(args.tokenizer, args.chat_template) if args.tokenizer else None
    if args.chat_template and not args.tokenizer:
        print("error: --chat-template needs --tokenizer", file=sys.stderr)
        return 2
    try:
        result = build_file(
            args.inp, args.out, bad_rows=args.bad_rows,
            preset=args.prefix_preset, prefix_overrides=overrides,
            reasoning_key=args.reasoning_key, answer_key=args.answer_key, label_key=args.label_key,
            prompt_key=args.prompt_key, image_key=args.image_key,
            direct_share=args.direct_share, seed=args.seed, both_modes=args.both_modes,
            direct_repeat=args.direct_repeat,
            tokenizer=tokenizer, chat_template_kwargs=args.chat_template_kwargs, max_length=args.max_length,
            on_bad_row=args.on_bad_row, enable_thinking_key=args.enable_thinking_key or None,
            progress_every=args.progress_every,
        )
    except (BadRowsError, ContractError, PrefixConfigError, ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(result.report())
    if result.bad:
        print(f"bad rows listed in {result.stats['bad_rows_file']}")
    print(f"wrote {len(result.samples)} samples to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
