"""Evaluation: a model in think, no_think and auto mode through verl's validation, its report and pictures.

- ``run``: the ``main_ppo ... trainer.val_only=true bpo.val_mode=all`` command and its execution;
- ``dump``: verl's validation generation dumps, read and checked;
- ``report``: per data source and mode: accuracy, tokens, think rate, hybrid accuracy, tokens saved;
- ``curves``: a training run's ``bpo/`` series from verl's file logger, and the collapse warning;
- ``plots``: the PNGs of both.

Command line: ``python -m r4b_verl.evaluate {run,report,curves}`` (``make eval``). README.md here.
"""
