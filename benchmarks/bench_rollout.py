"""Per-request cost of the ``bpo_bimode`` agent loop against verl's ``SingleTurnAgentLoop``, in one run.

    make bench-rollout          # or: python benchmarks/bench_rollout.py [--rounds 15 --requests 32]
    python benchmarks/bench_rollout.py --build direct    # the loops' own cost, without verl's Hydra build
    python benchmarks/bench_rollout.py --profile 1000    # cProfile of each loop instead of the table

What one request is: what verl's agent-loop worker does per trajectory (``_run_agent_loop``): build
the loop with ``hydra.utils.instantiate(_agent_loop_registry[name], ...)`` (verl builds one loop
object per trajectory) and ``await loop.run(sampling_params, raw_prompt=..., session_id=i % n, ...)``
with the kwargs the worker passes for a dataset row. Both loops run the same way, on the same
tokenizer, config and server, inside one asyncio event loop (``AgentLoopBase`` binds it at
construction); the per-trajectory post-processing that follows ``run()`` (padding, rewards) is the
same for every loop and is not timed.

The parts that are not the loops are fixed and as cheap as possible, so the difference is the
loops' own: a tiny real BPE tokenizer with think tags (``r4b_verl.demo.tiny``), verl's real
``ppo_trainer`` config with ``+recipe=r4b_bpo`` (so the loop reads a real ``bpo:`` block), a user
prompt of a few hundred tokens, and a fake server whose ``generate`` answers at once with a fixed
thinking response (reasoning, ``</think>``, a boxed answer; ``--response-tokens`` long, encoded
once) and its log-probs. Prompts fit ``prompt_length``, so neither loop truncates.

Rows (all against the same ``single_turn_agent`` baseline, sessions ``0..n-1`` in turn):

- ``train``: inside ``rollout_phase(validate=False)``, as r4b-verl's worker runs every loop; the
  bi-mode loop forces think / no_think by session. The baseline runs inside the same block.
- ``train, no phase block``: as verl's own agent-loop tests drive a loop; the bi-mode loop then
  also asks whether it runs in a Ray actor (it does not here).
- ``validate``: inside ``rollout_phase(validate=True)``: ``bpo.val_mode`` (``auto``).

Warm-up: the bi-mode loop checks its prefixes against the tokenizer and chat template once per
process and caches the result (``r4b_verl.rollout.prefixes.CHECKED_PREFIXES``); in a real worker
that happens at start-up (``BPOAgentLoopWorker.__init__``), before any rollout, so it is not a
per-request cost and is kept out of the timing: a checked request of each loop and ``--warmup``
untimed rounds of every kind run first. They also start the event loop's default executor (both
loops tokenize the prompt there) and warm the tokenizer and Hydra caches.

Timing: ``--rounds`` interleaved rounds (every kind once per round, so machine-load drifts hit all
alike) of ``--requests`` requests each, one after the other (verl gathers a prompt's n sessions
concurrently; in sequence, each request's time is its own). A cell is the best round's mean
microseconds per request, the median round in brackets; ``build`` (construction) and ``run()``
split the best round. The ratio is best over best. Target: the bi-mode loop within 1.05x of
``SingleTurnAgentLoop`` per request (the default run: hydra build).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import sys
import tempfile
import time
import uuid

import verl  # first: loads the r4b_verl plugin, which registers bpo_bimode

BASELINE, OURS = "single_turn_agent", "bpo_bimode"
SAMPLING_PARAMS = {"temperature": 1.0, "top_p": 1.0, "top_k": -1, "repetition_penalty": 1.0, "logprobs": True}


def user_message(target_tokens: int, tokenizer) -> str:
    """A math word problem padded with context sentences to at most ``target_tokens`` tokens (about that many)."""
    sentences = [
        "A shop sells {a} apples on Monday and {b} more on Tuesday than on Monday.",
        "Each crate holds {a} apples, and the shop opened {b} crates this week.",
        "On Wednesday the price of one apple rose from {a} to {b} cents.",
        "The owner wants to know how many apples were sold in total over the {a} days.",
        "Count {a} and {b} once more.",
    ]
    question = "What is 12 + 30? Put the final answer in \\boxed{}."
    parts, k = ["Read the problem carefully and reason step by step."], 0
    while True:
        for j in range(len(sentences)):  # the sentences in turn; near the target, the next one that still fits
            candidate = parts + [sentences[(k + j) % len(sentences)].format(a=12 + 7 * k, b=30 + 11 * k)]
            if len(tokenizer.encode(" ".join(candidate + [question]), add_special_tokens=False)) <= target_tokens:
                parts, k = candidate, k + 1
                break
        else:
            return " ".join(parts + [question])


def thinking_reply(target_tokens: int, tokenizer) -> list[int]:
    """At most ``target_tokens`` ids (about that many): reasoning, ``</think>``, a boxed answer, the end token."""
    tail = "\n</think>\n\nThe answer is \\boxed{42}.<|im_end|>"
    steps = []
    while True:
        k = len(steps)
        candidate = steps + [f"Let me add {10 + k} and {k + 2} step by step: that gives {12 + 2 * k}."]
        if len(tokenizer.encode("\n" + "\n".join(candidate) + tail, add_special_tokens=False)) > target_tokens:
            return tokenizer.encode("\n" + "\n".join(steps) + tail, add_special_tokens=False)
        steps = candidate


class FixedServer:
    """Stand-in for verl's LLMServerClient: the same response for every request, at once."""

    def __init__(self, token_ids: list[int]):
        self.token_ids = token_ids
        self.log_probs = [-0.5] * len(token_ids)

    async def generate(self, request_id, *, prompt_ids, sampling_params, **kwargs):
        from verl.workers.rollout.replica import TokenOutput

        log_probs = self.log_probs if sampling_params.get("logprobs") else None
        return TokenOutput(token_ids=self.token_ids, log_probs=log_probs)


def compose_config(model_dir: str, prompt_length: int, response_length: int, recipe: bool):
    from hydra import compose, initialize_config_module

    overrides = [
        *(["+recipe=r4b_bpo"] if recipe else []),
        f"actor_rollout_ref.model.path={model_dir}",
        "actor_rollout_ref.rollout.name=vllm",
        "actor_rollout_ref.rollout.n=4",
        "actor_rollout_ref.rollout.agent.default_agent_loop=bpo_bimode",
        f"data.max_prompt_length={prompt_length - 8}",
        f"actor_rollout_ref.rollout.prompt_length={prompt_length}",
        f"actor_rollout_ref.rollout.response_length={response_length}",
    ]
    with initialize_config_module("verl.trainer.config", version_base=None):
        return compose("ppo_trainer", overrides=overrides)


class Requests:
    """One request = build the loop the way verl's worker does + ``await loop.run(...)`` with a row's kwargs."""

    def __init__(self, config, tokenizer, server, hf_model_type, prompt, build="hydra"):
        import hydra
        from verl.experimental.agent_loop.agent_loop import DictConfigWrap, ToolListWrap, _agent_loop_registry
        from verl.utils.dataset.rl_dataset import RLHFDataset

        self.registry = _agent_loop_registry
        if build == "hydra":  # what AgentLoopWorker._run_agent_loop does
            self.build = lambda name, **kwargs: hydra.utils.instantiate(config=self.registry[name], **kwargs)
        else:  # the class called directly, as the tests build a loop
            classes = {name: hydra.utils.get_class(self.registry[name]["_target_"]) for name in (BASELINE, OURS)}
            self.build = lambda name, **kwargs: classes[name](**kwargs)
        self.build_kwargs = dict(
            trainer_config=DictConfigWrap(config=config), server_manager=server, tokenizer=tokenizer, processor=None,
            hf_model_type=hf_model_type, dataset_cls=RLHFDataset, data_config=DictConfigWrap(config.data),
            tools=ToolListWrap([]),
        )
        self.n = config.actor_rollout_ref.rollout.n
        self.prompt = prompt
        self.uid = str(uuid.uuid4())

    async def one(self, agent_name: str, i: int):
        """(seconds to build, seconds in total, the output) of request ``i``."""
        t0 = time.perf_counter()
        loop = self.build(agent_name, **self.build_kwargs)
        t1 = time.perf_counter()
        out = await loop.run(dict(SAMPLING_PARAMS), raw_prompt=self.prompt, session_id=i % self.n, uid=self.uid,
                             index=0, global_steps=1, data_source="toy", extra_info={})
        return t1 - t0, time.perf_counter() - t0, out

    async def round(self, agent_name: str, phase, count: int) -> tuple[float, float]:
        """(build, total) seconds per request, mean over ``count`` sequential requests."""
        from r4b_verl.rollout.agent_loop import rollout_phase

        build = total = 0.0
        for i in range(count):
            if phase is None:
                b, t, _ = await self.one(agent_name, i)
            else:
                with rollout_phase(validate=phase):
                    b, t, _ = await self.one(agent_name, i)
            build += b
            total += t
        return build / count, total / count


KINDS = [  # (row label, phase: None = no rollout_phase block)
    ("train", False),
    ("train, no phase block", None),
    ("validate", True),
]


async def bench(args, config, tokenizer, server, hf_model_type, prompt) -> dict:
    req = Requests(config, tokenizer, server, hf_model_type, prompt, args.build)
    calls = [(label, name, phase) for label, phase in KINDS for name in (BASELINE, OURS)]

    # sanity: both loops see the same prompt, the bi-mode one adds the session's prefix and its mode fields
    _, _, theirs = await req.one(BASELINE, 2)
    _, _, ours = await req.one(OURS, 2)
    assert ours.extra_fields["bpo_mode"] == "no_think", ours.extra_fields
    assert ours.prompt_ids[: len(theirs.prompt_ids)] == theirs.prompt_ids
    assert tokenizer.decode(ours.prompt_ids[len(theirs.prompt_ids):]) == ours.extra_fields["bpo_prefix"]
    assert ours.response_ids == theirs.response_ids == server.token_ids[: args.response_length]

    for _ in range(args.warmup):  # untimed: prefix checks, executor thread, tokenizer/Hydra caches
        for label, name, phase in calls:
            await req.round(name, phase, args.requests)

    times = {key[:2]: [] for key in [(label, name) for label, name, _ in calls]}
    gc.collect()
    gc_was_enabled = gc.isenabled()
    if args.no_gc:
        gc.disable()
    try:
        for _ in range(args.rounds):
            for label, name, phase in calls:
                times[(label, name)].append(await req.round(name, phase, args.requests))
    finally:
        if gc_was_enabled:
            gc.enable()
    return times


def summary(rounds: list[tuple[float, float]]) -> dict:
    """Best and median round (mean seconds per request); ``build`` and ``run`` split the best round."""
    totals = [t for _, t in rounds]
    best = min(range(len(rounds)), key=lambda r: totals[r])
    return {"best": totals[best], "median": statistics.median(totals), "build": rounds[best][0],
            "run": totals[best] - rounds[best][0]}


def profile(args, config, tokenizer, server, hf_model_type, prompt) -> None:
    """cProfile of ``--profile`` requests of each loop (training, in the worker's phase block), cumulative time."""
    import cProfile
    import pstats

    async def run(name):
        req = Requests(config, tokenizer, server, hf_model_type, prompt, args.build)
        for _ in range(args.warmup):
            await req.round(name, False, args.requests)
        prof = cProfile.Profile()
        prof.enable()
        await req.round(name, False, args.profile)
        prof.disable()
        return prof

    for name in (BASELINE, OURS):
        prof = asyncio.run(run(name))
        print(f"\n## cProfile, {args.profile} training requests of {name} (per-request: divide by {args.profile})\n")
        pstats.Stats(prof, stream=sys.stdout).sort_stats("cumulative").print_stats(args.profile_lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=15, help="interleaved timed rounds (best and median reported)")
    ap.add_argument("--requests", type=int, default=32, help="sequential requests per round and kind")
    ap.add_argument("--warmup", type=int, default=2, help="untimed rounds of every kind first")
    ap.add_argument("--prompt-tokens", type=int, default=400, help="user message length, tokens (at most)")
    ap.add_argument("--response-tokens", type=int, default=256, help="fake server's response length, tokens (at most)")
    ap.add_argument("--prompt-length", type=int, default=512, help="actor_rollout_ref.rollout.prompt_length")
    ap.add_argument("--response-length", type=int, default=512, help="actor_rollout_ref.rollout.response_length")
    ap.add_argument("--build", choices=["hydra", "direct"], default="hydra",
                    help="build each loop as verl's worker does (hydra.utils.instantiate) or call the class")
    ap.add_argument("--no-recipe", action="store_true", help="compose without +recipe=r4b_bpo (no bpo: block)")
    ap.add_argument("--no-gc", action="store_true", help="disable the garbage collector while timing")
    ap.add_argument("--profile", type=int, default=0, metavar="N",
                    help="instead of timing, cProfile N training requests of each loop")
    ap.add_argument("--profile-lines", type=int, default=40)
    args = ap.parse_args()

    import transformers
    from transformers import AutoConfig, AutoTokenizer

    from r4b_verl.demo.tiny import build_model, build_tokenizer

    with tempfile.TemporaryDirectory(prefix="bench_rollout_") as model_dir:
        build_model(model_dir, build_tokenizer(model_dir))
        tokenizer = AutoTokenizer.from_pretrained(model_dir)
        hf_model_type = getattr(AutoConfig.from_pretrained(model_dir), "model_type", None)
        config = compose_config(model_dir, args.prompt_length, args.response_length, recipe=not args.no_recipe)
        prompt = [{"role": "user", "content": user_message(args.prompt_tokens, tokenizer)}]
        prompt_ids = tokenizer.apply_chat_template(prompt, add_generation_prompt=True, tokenize=True)
        if hasattr(prompt_ids, "keys"):  # BatchEncoding on newer transformers
            prompt_ids = prompt_ids["input_ids"]
        server = FixedServer(thinking_reply(args.response_tokens, tokenizer))
        if len(prompt_ids) + 8 > args.prompt_length:
            sys.exit(f"prompt of {len(prompt_ids)} tokens does not fit --prompt-length {args.prompt_length} + prefix")

        if args.profile:
            profile(args, config, tokenizer, server, hf_model_type, prompt)
            return
        t0 = time.perf_counter()
        times = asyncio.run(bench(args, config, tokenizer, server, hf_model_type, prompt))
        wall = time.perf_counter() - t0

    print(f"verl {verl.__version__}, transformers {transformers.__version__}, python {sys.version.split()[0]}; "
          f"prompt {len(prompt_ids)} tokens, response {len(server.token_ids)} tokens, rollout.n="
          f"{config.actor_rollout_ref.rollout.n}{', +recipe=r4b_bpo' if not args.no_recipe else ''}; "
          f"loops built by {args.build}; best of {args.rounds} interleaved rounds x "
          f"{args.requests} requests (median in brackets), {wall:.1f} s")
    print(f"| phase | {BASELINE} µs/request | {OURS} µs/request | build µs ({BASELINE} / {OURS}) "
          f"| run() µs ({BASELINE} / {OURS}) | {OURS} / {BASELINE} |")
    print("|---|---|---|---|---|---|")
    for label, _ in KINDS:
        base, ours = summary(times[(label, BASELINE)]), summary(times[(label, OURS)])
        print(f"| {label} | {base['best'] * 1e6:.0f} ({base['median'] * 1e6:.0f}) "
              f"| {ours['best'] * 1e6:.0f} ({ours['median'] * 1e6:.0f}) "
              f"| {base['build'] * 1e6:.0f} / {ours['build'] * 1e6:.0f} "
              f"| {base['run'] * 1e6:.0f} / {ours['run'] * 1e6:.0f} "
              f"| {ours['best'] / base['best']:.3f}x |")


if __name__ == "__main__":
    main()
