"""R-4B stage 1, bi-mode annealing: verl multi-turn SFT data whose samples keep the stage-2 token contract.

- :mod:`r4b_verl.anneal.label`: RL rows -> labels (reasoning | direct) from the annotator's samples through
  verl's validation (``python -m r4b_verl.anneal.label``);
- :mod:`r4b_verl.anneal.build`: labelled RL rows -> SFT parquet (``python -m r4b_verl.anneal.build``,
  or :func:`r4b_verl.anneal.build.build` / :func:`~r4b_verl.anneal.build.build_file`);
- :mod:`r4b_verl.anneal.contract`: the sample text per mode and the token checks against ``bpo.prefix_preset``.

Nothing is imported here, so ``python -m r4b_verl.anneal.<module>`` runs its module once.
"""
