"""Which answer math-verify extracts from a text, found without sympy.

math-verify's ``parse`` runs its extraction regexes by priority group and, inside the first group
that matches, tries matches from the rightmost one; each tried match yields a *fallback string*
(its normalised LaTeX, or the number/expression text) and a sympy value. ``parse`` returns
``[first value that parsed, fallback string of the first tried match]``.

This module finds that first tried match with math-verify's own regexes and normaliser
(``get_extraction_regexes``, ``normalize_latex``: pure string code) so the reward can:

- compare fallback strings in-process: equal fallback strings make ``verify`` return True by
  its own string comparison, so that shortcut never says "equal" where math-verify would not;
- name the extracted answer (logged as ``pred``) and key the verdict cache by what determines
  math-verify's result (the match's groups), not by the surrounding text.

Only the ordering of ``extract_target_from_pred`` is repeated here (a few lines);
``tests/reward/test_math_fastpath_on_cpu.py`` checks it against ``parse`` on a corpus.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import lru_cache

from latex2sympy2_extended.math_normalization import normalize_latex
from math_verify.parser import (
    ExprExtractionConfig,
    ExtractionTarget,
    LatexExtractionConfig,
    get_extraction_regexes,
    make_latex_env_pattern,
)

# math-verify's own default extraction, for the gold and for the answer: the reward is never weaker
# than math-verify on the answer part because it *is* math-verify's reading of it (a
# \boxed{}-first priority of our own lost answers math-verify reads, e.g. "final answer is ..." after a box).
MV_DEFAULT: tuple[ExtractionTarget, ...] = (LatexExtractionConfig(), ExprExtractionConfig())
GOLD_CONFIG: tuple[ExtractionTarget, ...] = MV_DEFAULT
PRED_CONFIG: tuple[ExtractionTarget, ...] = MV_DEFAULT

_LATEX_GROUP = re.compile(r"^(first|next\d)_latex")


@dataclass(frozen=True)
class Candidate:
    """The first match math-verify tries on a text."""

    text: str  # math-verify's fallback string for it ('' if it has none)
    signature: tuple  # all math-verify's parse of this match depends on (normalised text, percent)
    percent: bool  # a percent sign was matched: the value is text/100
    single: bool  # one expression (not "1, 2 and 3": that fallback depends on parsing)


# Every match of math-verify's "boxed inside a LaTeX environment" pattern starts where an
# environment opens: "$", "\\[", "\\(" or whitespace before "[" (make_latex_env_pattern, boxed
# context). Trying the pattern only there gives exactly finditer's matches, several times faster:
# it is the costliest pattern and runs on every answer.
_BOXED_ENV_PREFIX = make_latex_env_pattern(prefix="first_", context="boxed")
_ENV_OPENERS = re.compile(r"\$|\\[\[(]|\s\[")
_MAX_OPENERS_LOOPED = 256


def _finditer_at_openers(pattern: re.Pattern, text: str):
    """``pattern.finditer(text)`` for a pattern whose matches can only start at an environment opener."""
    if text.count("$") + text.count("\\") > _MAX_OPENERS_LOOPED:
        yield from pattern.finditer(text)  # a Python loop over thousands of openers is slower than C
        return
    resume = 0
    for opener in _ENV_OPENERS.finditer(text):
        start = opener.start()
        if start < resume:
            continue
        match = pattern.match(text, start)
        if match is not None:
            yield match
            resume = match.end() if match.end() > start else start + 1


def _scanner(pattern: re.Pattern):
    if pattern.pattern.startswith(_BOXED_ENV_PREFIX):
        return lambda text: _finditer_at_openers(pattern, text)
    return pattern.finditer


@lru_cache(maxsize=8)
def _priority_groups(configs: tuple[ExtractionTarget, ...]):
    """[(priority, [(scan, target_index, target), ...]), ...] in math-verify's order."""
    flat = [
        (pattern, index, target, priority)
        for index, (patterns, target) in enumerate(get_extraction_regexes(configs))
        for pattern, priority in patterns
    ]
    flat.sort(key=lambda item: item[3])  # stable, as math-verify's sort
    groups: dict[int, list] = {}
    for pattern, index, target, priority in flat:
        groups.setdefault(priority, []).append((_scanner(pattern), index, target))
    return list(groups.items())


def first_match(text: str, configs: Sequence[ExtractionTarget]):
    """(match, target_index, target) of the first match ``parse`` tries, or None."""
    for _, patterns in _priority_groups(tuple(configs)):
        best = None
        best_key = None
        for scan, index, target in patterns:
            for match in scan(text):
                # math-verify sorts by (end, -start) descending with a stable sort: keep the first best.
                key = (match.end(), -match.start())
                if best_key is None or key > best_key:
                    best, best_key = (match, index, target), key
        if best is not None:
            return best
    return None


# Once it has taken the \boxed{} off, normalize_latex leaves a plain ASCII numeral as it is (every
# other rewrite it makes needs a backslash, a letter, a space, a brace, "$", a quote, "^", "/", "~"
# or a leading "."), except "0.5", which it turns into \frac{1}{2}. Most answers are such numerals,
# and normalising one costs ~40 us.
# tests/reward/test_math_fastpath_on_cpu.py checks the shortcut against normalize_latex.
_BOXED_NUMERAL = re.compile(r"\\boxed\{(-?[0-9]+(?:\.[0-9]+)?)\}")


def _normalized(value: str, config: LatexExtractionConfig, boxed_last: bool) -> str:
    """math-verify's normalisation of one LaTeX group (pure string code; a group's answers repeat)."""
    numeral = _BOXED_NUMERAL.fullmatch(value)
    if numeral is not None and numeral.group(1) != "0.5" and (
        boxed_last or config.normalization_config.boxed in ("all", "last")
    ):
        return numeral.group(1)
    return _normalize_latex(value, config, boxed_last)


@lru_cache(maxsize=8192)  # entries hold up to 2 x max_answer_chars: bounded to ~64 MB
def _normalize_latex(value: str, config: LatexExtractionConfig, boxed_last: bool) -> str:
    norm_config = config.normalization_config
    if boxed_last:
        norm_config = replace(norm_config, boxed="last")
    return normalize_latex(value, config=norm_config)


def _latex_candidate(match: re.Match, index: int, config: LatexExtractionConfig) -> Candidate:
    groups = match.groupdict()
    strings = []
    percent = False
    for name, value in groups.items():
        if not value or not _LATEX_GROUP.match(name):
            continue
        prefix, group_name = name.split("_")[0], name.split("_")[1]
        strings.append(_normalized(value, config, group_name == "latexBoxed"))
        percent = percent or bool(groups.get(f"{prefix}_percent"))
    if len(strings) == 1:
        # extract_latex parses the normalised string (+ percent): that is all the value depends on.
        return Candidate(strings[0], ("latex", strings[0], percent), percent, True)
    return Candidate(" and ".join(strings), (index, tuple((k, v) for k, v in groups.items() if v)), percent, False)


def _expr_candidate(match: re.Match, index: int) -> Candidate:
    # Mirrors the string part of math_verify.parser.extract_expr.
    groups = match.groupdict()
    integer = next((v for k, v in groups.items() if k.startswith("integer") and v), "")
    decimal = next((v for k, v in groups.items() if k.startswith("decimal") and v), "")
    percent = bool(groups.get("percent"))
    if integer or decimal:
        integer = integer.translate(str.maketrans("", "", ", ")).lstrip("0") or "0"
        number = f"{integer}{decimal.replace(',', '.')}"
        return Candidate(number, ("number", number, percent), percent, True)
    expr = groups.get("expr") or ""
    return Candidate(expr, ("expr", expr), False, True)


def first_candidate(text: str, configs: Sequence[ExtractionTarget]) -> Candidate | None:
    found = first_match(text, configs)
    if found is None:
        return None
    match, index, target = found
    if isinstance(target, LatexExtractionConfig):
        return _latex_candidate(match, index, target)
    if isinstance(target, ExprExtractionConfig):
        return _expr_candidate(match, index)
    raise TypeError(f"r4b_verl.reward.extraction handles LaTeX and expression targets only, got {target!r}")


def gold_text(ground_truth: str) -> str:
    """The text math-verify parses for a gold answer: the answer in \\boxed{} (kept if already boxed)."""
    gold = ground_truth.strip()
    if len(gold) >= 2 and gold[0] == "$" and gold[-1] == "$":
        gold = gold.strip("$").strip()
    return gold if "\\boxed" in gold else "\\boxed{" + gold + "}"


def parse_gold(ground_truth: str) -> list:
    """math-verify's reading of a gold answer, as the reward defines it (runs sympy: worker only).

    ``parse(gold_text(gold))``, the gold in \\boxed{} as verl's wrapper gives it: a bare LaTeX gold
    (``\\{1,2\\}``, ``x^2+1``) has no delimiters math-verify finds otherwise. When that reading has
    no sympy value (latex2sympy fails on ``\\boxed{28\\%}``), the gold *as given* is parsed too and
    its readings added: ``28\\%`` then reads as 28, equal to "28 percent" by math-verify's own
    percent rule. Only then: as given, a LaTeX gold is often misread (``(\\frac{3}{5}, \\frac{8}{3}]``
    as its last fraction, ``6\\sqrt{2}`` as 6).
    """
    from math_verify import parse

    gold = ground_truth.strip()
    readings = parse(gold_text(gold), GOLD_CONFIG, parsing_timeout=None)
    if all(isinstance(item, str) for item in readings):
        readings = readings + parse(gold, GOLD_CONFIG, parsing_timeout=None)
    return readings
