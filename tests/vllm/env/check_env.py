"""Checks the vLLM-on-CPU environment `make test-vllm` built: each line names what to fix."""

import importlib.metadata as md
import importlib.util
import sys


def main() -> int:
    problems = []
    import torch

    if torch.version.cuda is not None or not torch.__version__.startswith("2.13.0"):
        problems.append(
            f"torch {torch.__version__} (cuda {torch.version.cuda}): need the CPU build 2.13.0 (constraints.txt)")
    for cuda_only in ("torchvision", "torchaudio", "torchcodec"):
        if importlib.util.find_spec(cuda_only) is not None:
            problems.append(
                f"{cuda_only} is installed: its CUDA build breaks transformers imports; pip uninstall {cuda_only}")
    alias = md.version("vllm")
    if "cpu" not in alias:
        problems.append(
            f"version('vllm') = {alias!r}: verl and vLLM need the alias tests/vllm/env/vllm_version (0.32.0+cpu)")
    from transformers import Qwen2ForCausalLM  # noqa: F401  - fails with `torchvision::nms` if a CUDA torchvision is left
    from verl.workers.rollout.replica import get_rollout_replica_class

    get_rollout_replica_class("vllm")  # imports verl's vLLM server against this vLLM
    import vllm
    from vllm.platforms import current_platform

    if not current_platform.is_cpu():
        problems.append(f"vLLM picked platform {current_platform.device_type!r}, not cpu")
    for p in problems:
        print("check_env:", p, file=sys.stderr)
    if not problems:
        print(f"check_env: ok: torch {torch.__version__}, vllm {vllm.__version__} (alias {alias}), "
              f"transformers {md.version('transformers')}, verl {md.version('verl')}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
