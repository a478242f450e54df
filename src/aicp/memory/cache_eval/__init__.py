"""Hit rate and precision of the semantic cache on labelled paraphrases and near-misses.

`python -m aicp.memory.cache_eval` indexes one side of every pair and asks
the other; see `runner` for what is counted and `pairs` for the data.
"""
