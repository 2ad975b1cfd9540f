"""Bi-mode rollout for BPO: the ``bpo_bimode`` agent loop, its prefixes, options and ``bpo/`` metrics.

Importing this package (``r4b_verl.plugin`` does, in every verl process) registers the agent loop
with verl and installs the worker and trainer hooks (see ``worker_hooks.py`` and ``metrics.py``).
User documentation: ``r4b_verl/rollout/README.md``.
"""

from r4b_verl.rollout import metrics, worker_hooks
from r4b_verl.rollout.agent_loop import AGENT_LOOP_NAME, BPOBiModeAgentLoop  # registers "bpo_bimode"

worker_hooks.install()
metrics.install()

__all__ = ["AGENT_LOOP_NAME", "BPOBiModeAgentLoop"]
