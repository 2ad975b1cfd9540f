"""r4b-verl: R-4B's auto-thinking training (bi-mode rollout + BPO) as a verl plugin.

Importing this package registers nothing by itself; ``r4b_verl.plugin`` does (verl imports it
through the ``verl.plugins`` entry point in every process that imports verl).
"""

__version__ = "0.1.0"

# The verl release every integration point of this package was written and tested against.
VERL_VERSION = "0.9.1"
