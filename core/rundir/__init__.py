"""Runs read back from their run directories: one row per run (:mod:`.runs`), a run's history
(:mod:`.history`), a finished run replayed (:mod:`.replay`) and its metrics exported
(:mod:`.metrics_export`). Small files only; no torch.
"""
