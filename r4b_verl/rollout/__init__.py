"""Stage 2 generation: the ``bpo_bimode`` agent loop, its prefixes and options, the BPO worker and manager.

- ``agent_loop``: the loop (a ``SingleTurnAgentLoop`` subclass), registered with verl on import
  (``r4b_verl.plugin`` imports it in every verl process);
- ``prefixes`` / ``options``: the mode prefixes per model family and the ``bpo:`` config block;
- ``worker``: ``BPOAgentLoopManager`` / ``BPOAgentLoopWorker``, which the recipe names through
  ``actor_rollout_ref.rollout.agent.agent_loop_manager_class``.

User documentation: ``r4b_verl/rollout/README.md``. Importing this package registers nothing.
"""
