"""Dataset preparation and checks: public datasets -> verl's RL parquet rows, and a check of any RL file.

``python -m r4b_verl.data.prepare`` converts a downloaded dataset (parquet, JSON / JSONL or a saved
``datasets`` folder) into verl rows; ``python -m r4b_verl.data.check`` checks any RL parquet before
training, and the BPO manager runs its cheap part at trainer start-up. User documentation:
``r4b_verl/data/README.md``.
"""
