"""The peers' auto-thinking methods as switches of the plugin: AdaptThink, AutoThink, Thinkless, Ada-GRPO.

Each is a recipe (``+recipe=r4b_adaptthink`` ...) built from verl's hooks: a reward table
(:mod:`.rewards`), an advantage estimator (:mod:`.estimators`, ``register_adv_est``), a policy loss
(:mod:`.losses`, ``register_policy_loss``), the bi-mode rollout's ``bpo.train_mode`` and
``bpo.decision_token``. Equations and sources: ``r4b_verl/methods/README.md``.
"""
