"""The CPU backend of r4b-verl: train with verl 0.9.1 on a machine without an accelerator.

- ``platform``: verl platform ``cpu`` (gloo, no-op device calls), selected by ``VERL_PLATFORM=cpu``.
- ``server`` / ``rollout``: rollout backend ``hf_cpu`` (HF transformers sampling with exact
  temperature-scaled log-probs, weight sync from the FSDP actor).
- its changes to verl 0.9.1 internals live with the others in ``r4b_verl/verl_compat.py``
  (``CPU_PATCHES``), each with its reason.
- ``registration``: what ``r4b_verl.plugin`` imports; registers names everywhere, activates only
  where ``VERL_PLATFORM=cpu``.

Switched on by ``+recipe=r4b_bpo_cpu`` (``r4b_verl/config/recipe/r4b_bpo_cpu.yaml``). See README.md here.
"""
