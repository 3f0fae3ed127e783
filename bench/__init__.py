"""tui-train's benchmark program: `python -m bench [--quick]`. See BENCHMARKS.md."""
