"""matplotlib, the optional ``chart`` extra: one up-front check with an install hint, and an atomic PNG save."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

from ._atomic import atomic_path
from .errors import InvalidOptionError


def check_matplotlib(option: str) -> None:
    """Fail up front, naming ``option``, when matplotlib is missing (before minutes of work)."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise InvalidOptionError(
            f"{option}: matplotlib is required to draw it. Install: pip install 'spinepose-deploy[chart]'"
        ) from None


def pyplot(option: str) -> ModuleType:
    """``matplotlib.pyplot`` on the non-interactive Agg backend."""
    check_matplotlib(option)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_png(fig: object, path: str | Path, dpi: int = 110) -> Path:
    """Save a matplotlib figure as PNG through a temporary file, then close it."""
    import matplotlib.pyplot as plt

    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi)  # type: ignore[attr-defined]
    plt.close(fig)  # type: ignore[arg-type]
    return path
