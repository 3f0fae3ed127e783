"""The run layer: a run as a place, apart from any training loop (issue 22).

The run directory's record (:mod:`.runlog`), what a command does (:mod:`.control`), the control
endpoint (:mod:`.endpoint`), the system sampler (:mod:`.system`) and the plain-terminal front end with
its signal handling (:mod:`.headless`). Nothing here imports torch at module level or knows the
built-in loop (:mod:`tui_train.core.train`), which is this layer's first client.
"""
