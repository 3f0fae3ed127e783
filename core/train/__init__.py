"""The built-in training loop and everything that touches torch: building a run (:mod:`.runtime`),
the loop (:mod:`.engine`), data, models, evaluation, checkpoints, several processes
(:mod:`.distributed`), the LR sweep and exports. The only part of core that imports torch at
module level.
"""
