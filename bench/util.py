"""Small helpers shared by the benchmark sections."""

from __future__ import annotations

import os
import platform
import shutil
import tempfile
from pathlib import Path

MNIST_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


def rss_mb() -> float:
    """Current resident set size in MiB (Linux /proc; falls back to the peak elsewhere)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def mnist_root(given: str | None) -> Path:
    """A torchvision root holding MNIST/raw: --data-dir, else $TUI_TRAIN_MNIST_DIR or ../shared/data
    linked into a temporary folder (the shared folder is never written)."""
    if given:
        return Path(given)
    candidates = [os.environ.get("TUI_TRAIN_MNIST_DIR"), str(Path(__file__).resolve().parents[2] / "shared" / "data")]
    for c in candidates:
        if c and all((Path(c) / "MNIST" / "raw" / f).is_file() for f in MNIST_FILES):
            root = Path(tempfile.mkdtemp(prefix="tui-train-bench-"))
            (root / "MNIST" / "raw").mkdir(parents=True)
            for f in MNIST_FILES:
                (root / "MNIST" / "raw" / f).symlink_to(Path(c).resolve() / "MNIST" / "raw" / f)
            return root
    raise SystemExit("bench: MNIST not found: pass --data-dir (a folder holding MNIST/raw/*.gz) or set TUI_TRAIN_MNIST_DIR")


def machine() -> str:
    """One line describing where the figures were taken."""
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = f", GPU {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ", no GPU"
    return (f"{os.cpu_count()} CPU cores ({cpu}){gpu}; Python {platform.python_version()}, torch {torch.__version__}, "
            f"{platform.system()} {platform.release()}")


def table(rows: list[list[str]], header: list[str]) -> str:
    """A Markdown table."""
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    fmt = lambda r: "| " + " | ".join(str(c).ljust(w) for c, w in zip(r, widths)) + " |"  # noqa: E731
    return "\n".join([fmt(header), "| " + " | ".join("-" * w for w in widths) + " |"] + [fmt(r) for r in rows])


def cleanup(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
