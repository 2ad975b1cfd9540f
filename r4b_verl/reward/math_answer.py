"""The ``math`` reward: math-verify's verdict on the extracted final answer, computed cheaply.

The verdict is defined as math-verify's:
``verify(parse_gold(gold), parse(answer_part))`` with math-verify's default extraction configs;
``parse_gold`` (extraction.py) is ``parse(\\boxed{gold})``, plus ``parse(gold)`` as given when the
boxed reading has no sympy value.
How it is reached, cheapest first:

1. The answer's first match (math-verify's regexes, in-process, no sympy). No match: wrong.
2. Fast "equal" (in-process): the fallback strings of gold and answer are equal (math-verify's
   own string comparison then says True), or both are plain decimal numerals with the same exact
   value (sympy compares them numerically as equal). Fast "not equal" only for two plain integers
   of different value (math-verify's verdict is then certain; ``fast_mismatch: false`` turns it
   off). Neither when the answer holds a number that makes math-verify's parse return nothing
   (``_number_parse_risk``). Anything else falls through to math-verify.
3. Verdict cache (per process, bounded): keyed by (gold, what math-verify's parse of the first
   match depends on: its normalised text) when that match parses, else by (gold, answer text).
   Identical answers in a group are verified once, whatever text surrounds them.
4. The symbolic worker (symbolic_pool.py): math-verify's parse/verify under a deadline; the gold is
   parsed once per worker and cached there.

Steps 1-3 never block: ``score_math`` returns the verdict, or a ``SymbolicCheck`` (step 4) for the
caller to run: inline in ``compute_score``, in the event loop's executor in ``compute_score_async``.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
import time
from decimal import Decimal, InvalidOperation

from .cache import LRUCache
from .extraction import GOLD_CONFIG, PRED_CONFIG, Candidate, first_candidate, gold_text
from .outcome import Outcome, gold_list
from .symbolic_pool import get_pool
from .verdict_store import clear_stores, get_store

logger = logging.getLogger(__name__)

_DECIMAL = re.compile(r"-?[0-9]+(?:\.[0-9]+)?\Z")  # ASCII only: int("١٢") == 12, but math-verify does not parse it
_MAX_EXACT_DIGITS = 15  # beyond math-verify's numeric precision the fast path stays out of it

_gold_cache: LRUCache[str, Candidate | None] = LRUCache(8192)
# Keys are 16-byte digests, so the bound is ~10 MB whatever the answers' length.
_verdict_cache: LRUCache[bytes, tuple] = LRUCache(65536)
_warned_golds: set[str] = set()
_stats_lock = threading.Lock()
STATS = {
    "responses": 0,
    "no_answer": 0,
    "fast_string": 0,
    "fast_numeric": 0,
    "fast_mismatch": 0,
    "cache_hits": 0,
    "store_hits": 0,
    "symbolic": 0,
    "timeouts": 0,
    "waited_out": 0,
    "scanned_in_worker": 0,
}


def _key(*parts) -> bytes:
    digest = hashlib.blake2b(digest_size=16)
    for part in parts:
        digest.update(repr(part).encode("utf-8", "surrogatepass"))
        digest.update(b"\x00")
    return digest.digest()


def _count(key: str) -> None:
    with _stats_lock:
        STATS[key] += 1


def _significant_digits(numeral: str) -> int:
    digits = numeral.lstrip("-").replace(".", "").lstrip("0")
    if "." in numeral:
        digits = digits.rstrip("0")
    return len(digits)


def _plain_numerals(gold: Candidate, pred: Candidate, numeral: re.Pattern) -> tuple[str, str] | None:
    """Both texts as numerals matching ``numeral`` (no percent, no list, <= 15 significant digits), else None."""
    if gold.percent or pred.percent or not (gold.single and pred.single):
        return None
    a, b = gold.text.strip(), pred.text.strip()
    if not (numeral.match(a) and numeral.match(b)):
        return None
    if max(_significant_digits(a), _significant_digits(b)) > _MAX_EXACT_DIGITS:
        return None
    return a, b


def numerals_equal(gold: Candidate, pred: Candidate) -> bool:
    """Both plain decimal numerals (no percent, no list) with exactly the same value."""
    pair = _plain_numerals(gold, pred, _DECIMAL)
    if pair is None:
        return False
    try:
        return Decimal(pair[0]) == Decimal(pair[1])
    except InvalidOperation:
        return False


_INTEGER = re.compile(r"-?[0-9]+\Z")


def integers_differ(gold: Candidate, pred: Candidate) -> bool:
    """Both plain integers (no percent, no list, <= 15 digits) of different value.

    math-verify then compares Integer with Integer (sympy: simplify(a - b) != 0) and two different
    strings: its verdict is "not equal" for certain, so the symbolic call can be skipped.
    """
    pair = _plain_numerals(gold, pred, _INTEGER)
    return pair is not None and int(pair[0]) != int(pair[1])


def fast_equal(gold: Candidate, pred: Candidate) -> str | None:
    """'string' / 'numeric' when equality is certain without sympy, else None.

    Only single expressions: for a list ("$1$ and $2$") math-verify's fallback string is the joined
    text only if every item parses, so equal joined texts do not imply its string comparison.
    """
    if not (gold.single and pred.single):
        return None
    g, p = gold.text.strip(), pred.text.strip()
    if g and g == p:
        return "string"
    if numerals_equal(gold, pred):
        return "numeric"
    return None


def _gold_candidate(gold: str) -> Candidate | None:
    cached = _gold_cache.get(gold, False)
    if cached is not False:
        return cached
    candidate = first_candidate(gold_text(gold), GOLD_CONFIG)
    _gold_cache.put(gold, candidate)
    if candidate is None and gold not in _warned_golds:
        _warned_golds.add(gold)
        logger.warning("math reward: no answer can be extracted from the ground truth %r (data row's "
                       "reward_model.ground_truth): every response to it scores 0", gold[:200])
    return candidate


# math-verify's parse of an answer returns nothing at all (verdict: "not equal") when a plain number
# it tries makes sympy's Number() raise: non-ASCII digits, a signed integer with a leading zero
# ("-0999"), more digits than Python converts (its integers may group digits with "," or " ").
# It tries such a number after our candidate whenever the candidate's LaTeX does not parse, so an
# answer part holding one gets no fast verdict. (Substring checks first: this runs on every answer.)
_SIGNED_LEADING_ZERO = re.compile(r"-0\d")
_NON_ASCII_DIGIT = re.compile(r"(?![0-9])\d")
_TOO_MANY_DIGITS = 4000  # Python converts at most 4300 (sys.get_int_max_str_digits())
_LONG_DIGITS = re.compile(r"\d[\d, ]{%d}" % (_TOO_MANY_DIGITS - 1))  # noqa: UP031 - % keeps the regex braces unescaped


def _number_parse_risk(answer: str) -> bool:
    return (
        ("-0" in answer and _SIGNED_LEADING_ZERO.search(answer) is not None)
        or (not answer.isascii() and _NON_ASCII_DIGIT.search(answer) is not None)
        or (len(answer) >= _TOO_MANY_DIGITS and _LONG_DIGITS.search(answer) is not None)
    )


def fast_decision(gold_cand: Candidate, pred: Candidate, answer: str, fast_mismatch: bool = True):
    """``(verdict, how)`` when math-verify's verdict on ``answer`` is certain without sympy, else None."""
    how = fast_equal(gold_cand, pred)
    if how is not None:
        decision = True, how
    elif fast_mismatch and integers_differ(gold_cand, pred):
        decision = False, "mismatch"
    else:
        return None
    return None if _number_parse_risk(answer) else decision


def _fast_verdict(gold_cand: Candidate, pred: Candidate, answer: str, settings) -> bool | None:
    decision = fast_decision(gold_cand, pred, answer, settings.fast_mismatch)
    if decision is None:
        return None
    _count("fast_" + decision[1])
    return decision[0]


def _cached_verdict(*keys) -> tuple[bool, bool, str | None] | None:
    for key in keys:
        cached = _verdict_cache.get(key)
        if cached is not None:
            _count("cache_hits")
            return cached
    return None


def _symbolic(gold: str, answer: str, settings, match_key: bytes | None = None) -> tuple[bool, bool, str | None] | None:
    """math-verify's (equal, timed_out, extracted answer) from the verdict cache or one worker call.

    None if no worker answered in time (counted, not cached). A verdict is cached under
    ``match_key`` when the worker says the first match parsed (then it holds for any text with that
    match), else under the answer text.
    """
    text_key = _key(gold, "text", answer)
    keys = (text_key,) if match_key is None else (match_key, text_key)
    cached = _cached_verdict(*keys)
    if cached is not None:
        return cached
    store = get_store(settings.verdict_store)
    stored = store.get(*keys) if store is not None else None
    if stored is not None:  # verified by another reward process, or in an earlier step
        _count("cache_hits")  # every verdict not computed here; store_hits: those from the shared store
        _count("store_hits")
        _verdict_cache.put(*stored)  # under the key it was stored with: match or text
        return stored[1]
    pool = get_pool(settings.workers, settings.worker_memory_mb)
    wait_deadline = time.monotonic() + settings.max_wait_s
    with pool.slot_for(gold, settings.max_wait_s) as slot:
        if slot is None:
            _count("waited_out")
            return None
        # Answers of one group queue on the same slot: the one before us may have verified ours.
        cached = _cached_verdict(*keys)
        if cached is not None:
            return cached
        _count("symbolic")
        verdict = pool.call(slot, gold, answer, settings.timeout_s, settings.kill_grace_s, wait_deadline)
        if verdict.transient:
            _count("waited_out")
            return None
        if verdict.timeout:
            _count("timeouts")
        result = (verdict.equal, verdict.timeout, verdict.pred)
        key = match_key if match_key is not None and verdict.first_ok else text_key
        _verdict_cache.put(key, result)
        if store is not None and not verdict.timeout and verdict.error is None:
            store.put(key, verdict.equal, verdict.pred)
    return result


# math-verify's display-math patterns ("\\[...\\]", "\\(...\\)") backtrack quadratically or worse
# when a text opens many of them; such texts are scanned in the worker, under its deadline.
_MAX_OPENERS_IN_PROCESS = 32


class SymbolicCheck:
    """What is left of a math verdict once the in-process steps are done: worker calls.

    Calling it blocks (up to the worker deadlines, ``settings.max_wait_s`` at most per gold), so
    ``compute_score_async`` runs it in the event loop's executor; ``compute_score`` calls it inline.
    ``golds`` are ``(gold, match_key)`` pairs in ground-truth order; ``match_key`` None means
    "math-verify extracts in the worker too" (the text was not scanned in process).
    """

    def __init__(self, outcome: Outcome, answer: str, golds: list[tuple[str, bytes | None]], settings):
        self.outcome, self.answer, self.golds, self.settings = outcome, answer, golds, settings

    def __call__(self) -> Outcome:
        outcome = self.outcome
        for gold, match_key in self.golds:
            result = _symbolic(gold, self.answer, self.settings, match_key)
            if result is None:
                outcome.timeout = True
                continue
            equal, timed_out, shown = result
            outcome.timeout = outcome.timeout or timed_out
            if match_key is None and shown is not None:
                outcome.has_answer, outcome.pred = True, shown
            if equal:
                outcome.acc = 1.0
                break
        return outcome


def score_math(answer: str | None, ground_truth, settings) -> Outcome | SymbolicCheck:
    """The verdict if the in-process steps (1-3 above) decide it, else the ``SymbolicCheck`` to run.

    A list ground truth accepts any of its items: one decided "equal" ends the check, and only the
    items nothing in-process could decide go to the worker.
    """
    _count("responses")
    if answer is None:
        _count("no_answer")
        return Outcome()
    # Keyed as given: parse_gold may also read the gold unboxed, so "$28\\%$" and "28\\%" differ.
    golds = [str(g)[: settings.max_answer_chars].strip() for g in gold_list(ground_truth)]
    if answer.count("\\[") + answer.count("\\(") > _MAX_OPENERS_IN_PROCESS:
        _count("scanned_in_worker")
        return SymbolicCheck(Outcome(), answer, [(gold, None) for gold in golds], settings)
    pred = first_candidate(answer, PRED_CONFIG)
    if pred is None:
        _count("no_answer")
        return Outcome()
    outcome = Outcome(pred=pred.text, has_answer=True)
    undecided = []
    for gold in golds:
        gold_cand = _gold_candidate(gold)
        if gold_cand is None:
            continue
        equal = _fast_verdict(gold_cand, pred, answer, settings)
        if equal is None:
            match_key = _key(gold, "match", pred.signature)
            cached = _cached_verdict(match_key, _key(gold, "text", answer))
            if cached is None:
                undecided.append((gold, match_key))
                continue
            equal = cached[0]
            outcome.timeout = outcome.timeout or cached[1]
        if equal:
            outcome.acc = 1.0
            return outcome
    return SymbolicCheck(outcome, answer, undecided, settings) if undecided else outcome


def reset_caches() -> None:
    """Forget cached golds, verdicts (also the shared verdict store) and normalised strings
    (benchmarks and tests start cold)."""
    from . import extraction

    extraction._normalize_latex.cache_clear()
    _gold_cache.clear()
    _verdict_cache.clear()
    clear_stores()
    with _stats_lock:
        for key in STATS:
            STATS[key] = 0
