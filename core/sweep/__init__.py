"""Sweeps (issue 24): a queue of trials, each an ordinary run, ranked by a metric, pruned, resumable.

:mod:`.space` parses the search space, :mod:`.record` is the sweep's folder and ``sweep.json``,
:mod:`.driver` runs the trials (trainer processes of their own: the driver never imports torch),
and :func:`.plan.create` makes a new sweep from a preset and the command line.
"""
