"""The fan-out chart: wall time and signatures per second of each way of getting the same 1,000
signatures (``fanout.measurements`` of a bench report), as a PNG next to the main chart."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def chart(report: dict[str, Any], path: Path) -> bool:
    """Draw ``path``; False (and nothing drawn) when the report has no fan-out figures."""
    fanout = report.get("fanout") or {}
    measurements: dict[str, Any] = fanout.get("measurements") or {}
    if not measurements:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(measurements)
    wall = [measurements[n]["p50_ms"] for n in names]
    rate = [measurements[n]["signatures_per_s"] or 0 for n in names]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    xs = list(range(len(names)))
    colors = [
        "tab:blue" if n.endswith("_batch") and "openbao" not in n else "tab:gray" for n in names
    ]
    left.bar(xs, wall, color=colors)
    left.set_xticks(xs, names, rotation=25, ha="right")
    left.set_yscale("log")
    left.set_ylabel(f"wall time for {fanout.get('orders', 0):,} signatures, ms (p50)")
    left.set_title("time to sign them all (lower is better)")
    for x, ms in zip(xs, wall, strict=True):
        left.annotate(f"{ms:,.0f}", (x, ms), ha="center", va="bottom", fontsize=8)
    right.bar(xs, rate, color=colors)
    right.set_xticks(xs, names, rotation=25, ha="right")
    right.set_yscale("log")
    right.set_ylabel("signatures/s")
    right.set_title("signatures per second (higher is better)")
    fig.suptitle(
        f"pipvault fan-out bench, {report.get('when', '')}, {report['machine']['cpus']} cores"
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True
