"""Live runs in other processes: the remote trainer a viewer drives over the control endpoint
(:mod:`.remote`), starting our own child processes (:mod:`.spawn`) and torchrun launches
(:mod:`.launch`). No torch.
"""
