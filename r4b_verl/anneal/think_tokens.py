"""Give a model single-token think tags before stage 1: ``python -m r4b_verl.anneal.think_tokens``.

    python -m r4b_verl.anneal.think_tokens --model PATH --out DIR [--init spelling|mean] [--force]
        [--trust-remote-code]

Every prefix preset (``r4b_verl/rollout/prefixes.py``) forces the mode with ``<think>`` / ``</think>``,
and ``check_prefixes`` refuses, at worker start, a tokenizer that spells them in pieces: the model
would be forced through a string it never saw as one decision. Qwen3 and the DeepSeek-R1 distills
ship the tags as tokens; as far as we know a stock Qwen2.5 / Qwen2.5-VL tokenizer does not. This
tool adds them before stage 1, so that the bi-mode annealing SFT trains them and stage 2's preset
check passes on the annealed model:

- the tags become *added, non-special* tokens (as in Qwen3 and ``r4b_verl/demo/tiny.py``): verl's
  reward managers decode with ``skip_special_tokens=True``, which would drop special ones from the
  text the reward and the mode detection read;
- the embedding matrices grow only when the new ids do not fit: Qwen checkpoints carry padding rows
  beyond ``len(tokenizer)`` (151936 rows for Qwen2.5's 151665 tokens), which the new ids then use; a
  resize pads to a multiple of 64 and never shrinks;
- the rows of the new ids, input and output embeddings, start from the mean of the rows of the pieces
  the tag was spelled with (``--init spelling``, the default) or of all the tokenizer's rows
  (``--init mean``). An untrained row (zero, or random at the init scale) would make the first token
  of every forced prefix out of distribution: a zero input row gives the first layer nothing to
  attend with, and the output row's logit would be unlike any real token's, so stage 1 would start
  by repairing the tag instead of learning when to think. The spelling's mean starts the tag where
  the model's own reading of ``<think>`` is, which is also what it meant before.
- model, tokenizer and (for a VL model) processor are saved together, safetensors, into ``--out``,
  with :data:`MARKER` written last: a directory holding it is a finished conversion
  (``recipes/run_anneal.sh`` with ``THINK_TOKENS=add`` reuses one).

When both tags are already single tokens there is nothing to do: the tool says so and writes
nothing. Only one of them being a token is refused (a tokenizer this tool does not guess about).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from r4b_verl.rollout.prefixes import encode
from r4b_verl.think import THINK_CLOSE, THINK_OPEN

TAGS = (THINK_OPEN, THINK_CLOSE)
INITS = ("spelling", "mean")
MARKER = "r4b_think_tokens.json"  # written last into --out: the conversion finished
PAD_TO_MULTIPLE_OF = 64
# processor-side files a processor's save_pretrained may fold into processor_config.json: copied from
# the source when it did not write them, so that loaders reading them on their own still find them
_SIDE_FILES = ("preprocessor_config.json", "video_preprocessor_config.json")
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.json", "tokenizer.model", "vocab.txt")
_MODEL_CLASSES = ("AutoModelForCausalLM", "AutoModelForImageTextToText", "AutoModelForVision2Seq")


class ThinkTokensError(ValueError):
    """The input cannot be converted as asked; the message names the fix."""


# -- what the tokenizer has ----------------------------------------------------------------------------


def single_token_id(tokenizer: Any, tag: str) -> int | None:
    """The tag's id if the tokenizer encodes it as ONE token (as ``check_prefixes`` encodes it), else None."""
    ids = encode(tokenizer, tag)
    return ids[0] if len(ids) == 1 else None


@dataclass(frozen=True)
class Plan:
    """What the tokenizer needs: the tags already single tokens, and how the missing ones are spelled now."""

    present: dict[str, int]
    spelling: dict[str, list[int]]  # missing tag -> the ids it encodes to before it is added

    @property
    def nothing_to_add(self) -> bool:
        return not self.spelling


def plan(tokenizer: Any) -> Plan:
    """Which tags to add. Refuses a tokenizer with exactly one of the two as a token.

    Such a tokenizer is not one of the families this tool knows: adding the other tag next to an id
    someone else chose (and may have trained, or made special) is a decision for its owner.
    """
    present = {tag: i for tag in TAGS if (i := single_token_id(tokenizer, tag)) is not None}
    spelling = {tag: encode(tokenizer, tag) for tag in TAGS if tag not in present}
    if len(present) == 1:
        (have, i), (missing, pieces) = next(iter(present.items())), next(iter(spelling.items()))
        raise ThinkTokensError(
            f"the tokenizer has {have!r} as token {i} but splits {missing!r} into {pieces}: a half pair is not "
            f"something this tool guesses about. Add {missing!r} yourself (tokenizer.add_tokens, then size the "
            "embeddings) or use bpo.prefix_preset=custom with prefixes that avoid the missing tag."
        )
    return Plan(present=present, spelling=spelling)


def add_tags(tokenizer: Any, tags: list[str] | tuple[str, ...] = TAGS) -> dict[str, int]:
    """Add ``tags`` as non-special tokens (matched in raw text, as Qwen3's are); return their ids.

    Non-special so that ``decode(skip_special_tokens=True)``, verl's reward decoding, keeps them;
    ``normalized=False`` as in Qwen3's tokenizer. Checks that each now encodes to one token.
    """
    from transformers import AddedToken

    tokenizer.add_tokens(
        [
            AddedToken(tag, special=False, normalized=False, lstrip=False, rstrip=False, single_word=False)
            for tag in tags
        ],
        special_tokens=False,
    )
    ids = {}
    for tag in tags:
        i = single_token_id(tokenizer, tag)
        if i is None:
            raise ThinkTokensError(
                f"{tag!r} was added but still encodes to {encode(tokenizer, tag)}: this tokenizer "
                "does not honour added tokens; add the tag by hand and check tokenizer.encode"
            )
        ids[tag] = i
    return ids


# -- the embedding rows ----------------------------------------------------------------------------------


def embedding_rows(model: Any) -> int:
    return int(model.get_input_embeddings().weight.shape[0])


def ensure_rows(model: Any, needed: int) -> tuple[int, int]:
    """Grow the embeddings to at least ``needed`` rows (padded to a multiple of 64); never shrink.

    Returns ``(rows_before, rows_after)``. Checkpoints padded beyond the tokenizer (Qwen's) usually
    have the rows already: then nothing is resized, and the new ids take padding rows.
    """
    before = embedding_rows(model)
    if needed > before:
        model.resize_token_embeddings(needed, pad_to_multiple_of=PAD_TO_MULTIPLE_OF)
    after = embedding_rows(model)
    output = model.get_output_embeddings()
    if after < needed or (output is not None and output.weight.shape[0] < needed):
        raise ThinkTokensError(
            f"the model has {after} embedding rows after resizing, {needed} needed: "
            f"{type(model).__name__} does not resize its embeddings; add the rows by hand"
        )
    return before, after


def tied(model: Any) -> bool:
    """Whether input and output embeddings are one tensor (then a row is written once)."""
    output = model.get_output_embeddings()
    return output is not None and output.weight.data_ptr() == model.get_input_embeddings().weight.data_ptr()


def initial_rows(weight: Any, sources: dict[int, list[int]], n_tokens: int, init: str) -> dict[int, Any]:
    """Each new id's starting row: the float32 mean of its ``sources`` rows (spelling) or of rows ``[0, n_tokens)``.

    ``n_tokens`` is the tokenizer's length before the tags: padding rows beyond it were never trained
    and stay out of the mean. Computed before anything is written, so a tied matrix is read unchanged.
    """
    if init not in INITS:
        raise ThinkTokensError(f"--init {init!r} is unknown; choose one of {list(INITS)}")
    if init == "mean":
        mean = _mean_of_rows(weight, n_tokens).to(weight.dtype)
        return {new_id: mean for new_id in sources}
    return {new_id: weight[pieces].float().mean(dim=0).to(weight.dtype) for new_id, pieces in sources.items()}


def _mean_of_rows(weight: Any, n_rows: int, chunk: int = 4096) -> Any:
    """The float32 mean of ``weight[:n_rows]``, summed in chunks: a bf16 matrix of 150k rows is never copied whole."""
    total = None
    for start in range(0, n_rows, chunk):
        part = weight[start : min(start + chunk, n_rows)].float().sum(dim=0)
        total = part if total is None else total + part
    return total / n_rows


def init_new_rows(model: Any, sources: dict[int, list[int]], n_tokens: int, init: str = "spelling") -> list[str]:
    """Write the new ids' rows in the input and output embeddings (and an output bias); returns what was written."""
    import torch

    targets = [("input", model.get_input_embeddings())]
    output = model.get_output_embeddings()
    if output is not None and not tied(model):
        targets.append(("output", output))
    written = []
    with torch.no_grad():
        for name, module in targets:
            params = [("weight", module.weight)]
            if getattr(module, "bias", None) is not None:
                params.append(("bias", module.bias))
            for pname, param in params:
                for new_id, row in initial_rows(param.data, sources, n_tokens, init).items():
                    param.data[new_id] = row
                written.append(f"{name}.{pname}")
    return written


# -- loading and saving ------------------------------------------------------------------------------------


def _is_hub_id(name: str) -> bool:
    return name.count("/") == 1 and not name.startswith((".", "/", "~")) and all(name.split("/"))


def check_source(model_path: str) -> str:
    """A local checkpoint directory (made absolute) or a hub id; refuses a path that does not exist."""
    if os.path.isdir(model_path):
        return os.path.realpath(model_path)
    if os.path.exists(model_path):
        raise ThinkTokensError(
            f"--model {model_path} is a file; give the checkpoint DIRECTORY (config.json, weights, tokenizer files)"
        )
    if not _is_hub_id(model_path):
        raise ThinkTokensError(
            f"--model {model_path}: no such directory; give the base model's HF checkpoint "
            "directory (config.json, weights, tokenizer files)"
        )
    return model_path


def load_tokenizer_and_processor(model_path: str, trust_remote_code: bool = False) -> tuple[Any, Any]:
    """``(tokenizer, processor or None)``; with a processor the tokenizer IS ``processor.tokenizer``.

    One object, so the tags added to it are in both saved copies. A model directory with processor
    files whose processor does not load is refused rather than converted without it (a VL model saved
    without its processor cannot be trained on images).
    """
    from transformers import AutoProcessor, AutoTokenizer, PreTrainedTokenizerBase

    fix = (
        "Put the base model's tokenizer files next to its weights (tokenizer.save_pretrained(DIR)), or pass "
        "--trust-remote-code if the tokenizer is remote code"
    )
    # transformers 5 builds an EMPTY tokenizer of the config's class from a directory without tokenizer files
    if os.path.isdir(model_path) and not any(os.path.isfile(os.path.join(model_path, f)) for f in _TOKENIZER_FILES):
        raise ThinkTokensError(
            f"no tokenizer loads from {model_path}: none of {list(_TOKENIZER_FILES)} is there. {fix}"
        )
    try:
        tokenizer = AutoTokenizer.from_pretrained(model_path, trust_remote_code=trust_remote_code)
    except (OSError, ValueError, KeyError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else ""
        raise ThinkTokensError(f"no tokenizer loads from {model_path} ({type(exc).__name__}: {first}). {fix}") from exc
    if not encode(tokenizer, THINK_OPEN):
        raise ThinkTokensError(
            f"the tokenizer of {model_path} encodes {THINK_OPEN!r} to nothing: it has no vocabulary. {fix}"
        )
    processor_files = [
        f for f in ("processor_config.json", *_SIDE_FILES) if os.path.isfile(os.path.join(model_path, f))
    ]
    try:
        processor = AutoProcessor.from_pretrained(model_path, trust_remote_code=trust_remote_code)
    except Exception as exc:  # any failure: AutoProcessor raises many kinds, from many sub-processors
        if processor_files:
            hint = "" if trust_remote_code else " (pass --trust-remote-code if its processor is remote code)"
            raise ThinkTokensError(
                f"{model_path} has {processor_files} but its processor does not load{hint}: {type(exc).__name__}: {exc}"
            ) from exc
        return tokenizer, None
    if isinstance(processor, PreTrainedTokenizerBase) or getattr(processor, "tokenizer", None) is None:
        return tokenizer, None  # a text model: AutoProcessor falls back to the tokenizer
    return processor.tokenizer, processor


def load_model(model_path: str, trust_remote_code: bool = False) -> Any:
    """The model on CPU in its checkpoint's dtype: a causal LM, else an image-text-to-text model (VL).

    A class that leaves checkpoint weights unused (``unexpected_keys``: e.g. an LM class dropping a
    vision tower) is not taken: saving it would lose them.
    """
    import transformers

    tried = []
    for name in _MODEL_CLASSES:
        cls = getattr(transformers, name, None)
        if cls is None:
            continue
        try:
            model, info = cls.from_pretrained(
                model_path, dtype="auto", trust_remote_code=trust_remote_code, output_loading_info=True
            )
        except ValueError as exc:  # "Unrecognized configuration class ... for this kind of AutoModel"
            tried.append(f"{name}: {str(exc).splitlines()[0]}")
            continue
        if info.get("unexpected_keys"):
            tried.append(
                f"{name}: leaves {len(info['unexpected_keys'])} weights unused ({info['unexpected_keys'][:3]})"
            )
            continue
        return model.eval()
    raise ThinkTokensError(
        f"no transformers class loads all of {model_path}: "
        + "; ".join(tried)
        + ". Convert it by hand (add_tokens, resize_token_embeddings) or pass --trust-remote-code"
    )


def check_out(out: str, source: str, force: bool) -> Path:
    """``--out`` as a Path; refuses the source directory itself and a non-empty one without ``force``."""
    path = Path(out).resolve()
    if os.path.isdir(source) and path == Path(source).resolve():
        raise ThinkTokensError(f"--out {out} is the --model directory: write the converted model next to it")
    if path.exists() and not path.is_dir():
        raise ThinkTokensError(f"--out {out} is a file; give a directory")
    if path.is_dir() and any(path.iterdir()) and not force:
        raise ThinkTokensError(f"--out {out} is not empty; give an empty or new directory, or --force to write over it")
    return path


def _copy_side_files(source: str, out: Path) -> list[str]:
    """Source files the saves did not write: remote code (``*.py``) and sub-processor configs."""
    if not os.path.isdir(source):
        return []
    copied = []
    for entry in sorted(os.listdir(source)):
        src = os.path.join(source, entry)
        if (entry.endswith(".py") or entry in _SIDE_FILES) and os.path.isfile(src) and not (out / entry).exists():
            shutil.copy2(src, out / entry)
            copied.append(entry)
    return copied


# -- the conversion ----------------------------------------------------------------------------------------


@dataclass
class Result:
    """What :func:`convert` did; :meth:`report` is what the CLI prints."""

    source: str
    out: str | None
    ids: dict[str, int]
    spelling: dict[str, list[int]] = field(default_factory=dict)  # empty: nothing was added
    init: str = "spelling"
    rows_before: int = 0
    rows_after: int = 0
    tied: bool = False
    written: list[str] = field(default_factory=list)
    processor: str | None = None
    copied: list[str] = field(default_factory=list)
    special: list[str] = field(default_factory=list)  # tags that are special tokens (lost on decoding)

    @property
    def added(self) -> bool:
        return bool(self.spelling)

    def report(self) -> str:
        ids = ", ".join(f"{tag} = {i}" for tag, i in self.ids.items())
        if not self.added:
            lines = [
                (
                    f"nothing to add: {self.source} already has single-token think tags ({ids}); use it as stage "
                    "1's MODEL as it is (bpo.prefix_preset: see r4b_verl/anneal/README.md, Model families)"
                )
            ]
        else:
            resized = (
                f"resized {self.rows_before} -> {self.rows_after} rows (multiple of {PAD_TO_MULTIPLE_OF})"
                if self.rows_after != self.rows_before
                else f"not resized: the {self.rows_before} rows hold the new ids"
            )
            embeddings = "tied" if self.tied else "untied"
            init = "mean of the spelling pieces" if self.init == "spelling" else "mean of all token rows"
            saved = "model + tokenizer" + (f" + processor ({self.processor})" if self.processor else "")
            lines = [
                f"added {ids} (non-special tokens) to the tokenizer of {self.source}",
                "spelled before as " + ", ".join(f"{tag} {pieces}" for tag, pieces in self.spelling.items()),
                f"embeddings: {resized}; {embeddings}; new rows ({', '.join(self.written)}) = {init}",
                f"saved {saved} to {self.out}" + (f"; copied {self.copied}" if self.copied else ""),
                "next: build the stage-1 data with --tokenizer on it and run stage 1 from it:",
                f"  python -m r4b_verl.anneal.build ... --tokenizer {self.out}",
                f"  recipes/run_anneal.sh {self.out} DATA   (make anneal MODEL={self.out} DATA=...)",
            ]
        if self.special:
            lines.append(
                f"note: {self.special} are SPECIAL tokens: verl's decode(skip_special_tokens=True) drops them; "
                "set reward.custom_reward_function.reward_kwargs.think_tags=stripped in stage 2"
            )
        return "\n".join(lines)


def _special_tags(tokenizer: Any, ids: dict[str, int]) -> list[str]:
    special = set(getattr(tokenizer, "all_special_ids", []) or [])
    return [tag for tag, i in ids.items() if i in special]


def convert(
    model: str, out: str, init: str = "spelling", force: bool = False, trust_remote_code: bool = False
) -> Result:
    """Add the think tags to ``model``'s tokenizer, size and initialise the embeddings, save all into ``out``.

    Writes nothing when the tags are already single tokens (``Result.added`` is False). Raises
    :class:`ThinkTokensError` naming the fix for any input it refuses.
    """
    if init not in INITS:
        raise ThinkTokensError(f"--init {init!r} is unknown; choose one of {list(INITS)}")
    source = check_source(model)
    tokenizer, processor = load_tokenizer_and_processor(source, trust_remote_code)
    todo = plan(tokenizer)
    if todo.nothing_to_add:
        return Result(
            source=source, out=None, ids=todo.present, init=init, special=_special_tags(tokenizer, todo.present)
        )
    out_path = check_out(out, source, force)

    lm = load_model(source, trust_remote_code)
    n_tokens = len(tokenizer)
    ids = add_tags(tokenizer, list(todo.spelling))
    new = {i: todo.spelling[tag] for tag, i in ids.items() if i >= n_tokens}  # an id inside the old vocab keeps its row
    before, after = ensure_rows(lm, max(ids.values()) + 1)
    written = init_new_rows(lm, new, n_tokens, init) if new else []

    out_path.mkdir(parents=True, exist_ok=True)
    (out_path / MARKER).unlink(missing_ok=True)  # an interrupted --force run must not look finished
    lm.save_pretrained(str(out_path))
    tokenizer.save_pretrained(str(out_path))
    if processor is not None:
        processor.save_pretrained(str(out_path))  # its tokenizer is `tokenizer`: the same files again
    result = Result(
        source=source,
        out=str(out_path),
        ids=ids,
        spelling=todo.spelling,
        init=init,
        rows_before=before,
        rows_after=after,
        tied=tied(lm),
        written=written,
        processor=type(processor).__name__ if processor is not None else None,
        copied=_copy_side_files(source, out_path),
        special=_special_tags(tokenizer, ids),
    )
    marker = {
        "source": source,
        "init": init,
        "ids": ids,
        "spelling": todo.spelling,
        "rows_before": before,
        "rows_after": after,
        "tied": result.tied,
    }
    (out_path / (MARKER + ".tmp")).write_text(json.dumps(marker, indent=1) + "\n")
    os.replace(out_path / (MARKER + ".tmp"), out_path / MARKER)
    return result


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="python -m r4b_verl.anneal.think_tokens",
        description="Add <think> / </think> as single tokens to a model that lacks them (before stage 1).",
    )
    ap.add_argument("--model", required=True, help="the base model's HF checkpoint directory (or hub id)")
    ap.add_argument("--out", required=True, help="directory to write model + tokenizer (+ processor) into")
    ap.add_argument(
        "--init",
        choices=INITS,
        default="spelling",
        help="new rows: mean of the rows of the pieces the tag was spelled with (default), or of all rows",
    )
    ap.add_argument("--force", action="store_true", help="write into a non-empty --out")
    ap.add_argument("--trust-remote-code", action="store_true", help="for models whose code ships with the checkpoint")
    return ap


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        result = convert(
            args.model, args.out, init=args.init, force=args.force, trust_remote_code=args.trust_remote_code
        )
    except ThinkTokensError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(result.report())
    return 0


if __name__ == "__main__":
    sys.exit(main())
