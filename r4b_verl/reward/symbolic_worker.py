"""The symbolic half of the ``math`` reward, run as a child process (``python -m ...symbolic_worker``).

Why a process of its own: sympy work on untrusted text can take unbounded time or memory, and
nothing running in a Ray actor's thread or event loop can interrupt it (math-verify's own timeout
uses ``signal.alarm``, which only works in a main thread). Here the code runs in the main thread of
a process the reward owns, so:

- a soft deadline (``setitimer``) raises inside Python code after ``timeout`` seconds: the answer
  is scored as not verified, flagged ``timeout``, and the process lives on;
- code stuck in C (huge integer powers, ...) ignores signals: the parent kills the process at the
  hard deadline (``symbolic_pool.py``) and starts a fresh one;
- ``RLIMIT_AS`` caps memory so one answer cannot exhaust the node.

Protocol: one JSON object per line. The child first writes ``{"ready": true}``; then for each
request ``{"gold": <gold text>, "pred": <answer text>, "timeout": <s>}`` it writes
``{"equal": bool, "first_ok": bool, "timeout": bool, "error": str|null, "pred": str|null}``
(``pred``: the answer math-verify extracted, null if none).
``equal`` is exactly ``verify(parse_gold(gold), parse(pred, PRED_CONFIG))`` with math-verify's
defaults (its signal timeouts off: the deadline here replaces them); ``gold`` is the ground truth as
given (extraction.parse_gold reads it in \\boxed{}, and as given when that has no sympy value).
``first_ok`` says the first match math-verify tried parsed, so the verdict depends on that match
alone and the parent may reuse it for any text whose first match has the same groups.
"""

from __future__ import annotations

import json
import os
import signal
import sys


class _SoftTimeout(BaseException):
    """BaseException: math-verify and sympy catch ``Exception`` and must not swallow it."""


def _on_alarm(signum, frame):
    raise _SoftTimeout()


def _limit_memory() -> None:
    limit_mb = int(os.environ.get("R4B_REWARD_WORKER_MEMORY_MB", "0") or 0)
    if limit_mb > 0:
        import resource

        limit = limit_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def main() -> None:
    # The protocol owns the original stdout pipe; anything a library prints, from Python or from C
    # through fd 1, goes to stderr instead.
    protocol = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    _limit_memory()

    import math_verify.grader as mv_grader
    import math_verify.parser as mv_parser
    from math_verify import parse, verify
    from math_verify.parser import extract_match

    from .cache import LRUCache
    from .extraction import PRED_CONFIG, first_match, parse_gold

    # Timeouts are handled here; silence math-verify's "timeout disabled" warning.
    mv_parser.TIMEOUT_WARNING_SHOWN = True
    mv_grader.TIMEOUT_WARNING_SHOWN = True
    signal.signal(signal.SIGALRM, _on_alarm)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C of the trainer: the parent closes our stdin

    golds: LRUCache[str, list] = LRUCache(4096)

    def check(gold: str, pred: str) -> tuple[bool, bool, str | None]:
        parsed_gold = golds.get(gold)
        if parsed_gold is None:
            parsed_gold = parse_gold(gold)
            golds.put(gold, parsed_gold)
        parsed_pred = parse(pred, PRED_CONFIG, parsing_timeout=None)
        equal = bool(parsed_gold and parsed_pred and verify(parsed_gold, parsed_pred, timeout_seconds=None))
        found = first_match(pred, PRED_CONFIG)
        first_ok = found is not None and extract_match(found[0], found[2])[0] is not None
        shown = next((p for p in reversed(parsed_pred) if isinstance(p, str)), "") if parsed_pred else None
        return equal, first_ok, shown

    protocol.write(json.dumps({"ready": True, "pid": os.getpid()}) + "\n")
    protocol.flush()
    for line in sys.stdin:
        reply = {"equal": False, "first_ok": False, "timeout": False, "error": None, "pred": None}
        try:
            request = json.loads(line)
            signal.setitimer(signal.ITIMER_REAL, max(float(request.get("timeout", 5.0)), 0.001))
            try:
                reply["equal"], reply["first_ok"], reply["pred"] = check(str(request["gold"]), str(request["pred"]))
                reply["pred"] = reply["pred"][:256] if reply["pred"] is not None else None
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
        except _SoftTimeout:
            reply["timeout"] = True
        except MemoryError:
            reply["error"] = "MemoryError"
        except Exception as exc:  # noqa: BLE001 - a verdict of False, like math-verify's own handling
            # Only the type: str() of an exception holding a huge sympy object can itself hang.
            reply["error"] = type(exc).__name__
        protocol.write(json.dumps(reply) + "\n")
        protocol.flush()


if __name__ == "__main__":
    main()
