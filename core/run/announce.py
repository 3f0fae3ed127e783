"""How a run of a loop of your own tells ``tui-train watch`` where it is (issue 23): two
environment variables the watcher sets and :func:`tui_train.init` reads. Here, torch-free, so that
the watcher (the viewer side) needs nothing of the API's module."""

ANNOUNCE_ENV = "TUI_TRAIN_ANNOUNCE"
"""Set by ``tui-train watch``: a file path; the run writes ``{"socket", "run_dir", "pid"}`` there
(atomically, one JSON object) once its endpoint serves, so the watcher can attach."""

OUTPUT_ENV = "TUI_TRAIN_OUTPUT"
"""Set by ``tui-train watch``: the file the script's stdout and stderr go to; the run copies it into
``<run_dir>/output.log`` (until the script exits) and, while the run lasts, into the event log
(:data:`OUTPUT_LINES_PER_S` lines a second at most)."""

OUTPUT_LINES_PER_S = 20
"""Output lines per second that become events (all of them are in output.log; a RunNote says how
many were left out of the event log)."""
