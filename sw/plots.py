"""Figures of a training run: accuracy curves, hidden weight images, a spike raster and the
gradient-alignment curve. Matplotlib with the Agg backend (no display needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["write_plots"]


def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def accuracy_curves(history, path: Path, title: str, reference: dict | None = None) -> None:
    plt = _plt()
    ep = [r["epoch"] for r in history]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(ep, [100 * r["train_accuracy"] for r in history], "o-", label="train")
    ax.plot(ep, [100 * r["test_accuracy"] for r in history], "s-", label="test")
    for name, accs in (reference or {}).items():
        ax.plot(range(1, len(accs) + 1), [100 * a for a in accs], "--", label=name)
    ax.set_xlabel("epoch")
    ax.set_ylabel("accuracy (%)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def alignment_curve(history, path: Path, title: str) -> None:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot([r["epoch"] for r in history], [r["alignment_deg"] for r in history], "o-")
    ax.axhline(90, color="gray", lw=0.8, ls=":")
    ax.set_xlabel("epoch")
    ax.set_ylabel("angle to BP gradient (deg)")
    ax.set_title(title)
    ax.set_ylim(0, 180)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def hidden_weights(w1: np.ndarray, image_shape, path: Path, n: int = 32) -> bool:
    """Input weights of the first ``n`` hidden neurons as images; False if the input is not
    image-shaped. With ON/OFF input pairs (``2F`` rows, ON block first) each image is the ON
    weights minus the OFF weights."""
    if image_shape is not None and w1.shape[0] == 2 * int(np.prod(image_shape)):
        f = w1.shape[0] // 2
        w1 = w1[:f].astype(np.int64) - w1[f:]
    if image_shape is None or int(np.prod(image_shape)) != w1.shape[0]:
        return False
    plt = _plt()
    n = min(n, w1.shape[1])
    cols = 8
    rows = (n + cols - 1) // cols
    lim = max(1, int(np.percentile(np.abs(w1), 99)))  # a few saturated weights must not wash out
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.1, rows * 1.1))
    for j, ax in enumerate(np.ravel(axes)):
        ax.axis("off")
        if j < n:
            ax.imshow(w1[:, j].reshape(image_shape), cmap="RdBu_r", vmin=-lim, vmax=lim)
    fig.suptitle("hidden neurons' input weights")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def spike_raster(trace, label, pred, path: Path) -> None:
    plt = _plt()
    fig, axes = plt.subplots(3, 1, figsize=(7, 7), sharex=True,
                             gridspec_kw={"height_ratios": [2, 3, 1]})
    for ax, s, name in zip(axes, (trace.s_in, trace.s_hid, trace.s_out),
                           ("input", "hidden", "output")):
        t, n = np.nonzero(s)
        ax.scatter(t, n, s=2, marker="|", color="k")
        ax.set_ylabel(f"{name} neuron")
        ax.set_ylim(-0.5, s.shape[1] - 0.5)
    if label is not None:
        axes[2].axhline(label, color="tab:green", alpha=0.3, lw=6, label=f"label {label}")
        axes[2].legend(loc="upper right", fontsize=8)
    axes[2].set_xlabel("timestep")
    axes[0].set_title(f"spike raster of one test sample (predicted {pred})")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_plots(out_dir, summary: dict, w1, image_shape, trace=None, label=None, pred=None,
                reference: dict | None = None) -> list[Path]:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    title = " / ".join([summary["dataset"], summary["rule"], summary["backend"],
                        f"seed {summary['seed']}"])
    written = []
    p = out / "accuracy.png"
    accuracy_curves(summary["history"], p, title, reference)
    written.append(p)
    if any(np.isfinite(r.get("alignment_deg", np.nan)) for r in summary["history"]):
        p = out / "alignment.png"
        alignment_curve(summary["history"], p, title)
        written.append(p)
    p = out / "hidden_weights.png"
    if hidden_weights(np.asarray(w1), image_shape, p):
        written.append(p)
    if trace is not None:
        p = out / "raster.png"
        spike_raster(trace, label, pred, p)
        written.append(p)
    return written
