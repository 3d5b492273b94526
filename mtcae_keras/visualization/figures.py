"""Matplotlib without a screen, and the way every figure of ours is written."""


def pyplot():
    """`matplotlib.pyplot` on the Agg backend (servers, CI and worker processes have no
    display)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(figure, path, title=None):
    """Titles, lays out, writes (100 dpi) and closes `figure`; returns `path`."""
    if title:
        figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    pyplot().close(figure)
    return path
