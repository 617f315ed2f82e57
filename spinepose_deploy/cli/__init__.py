"""The ``spinepose-deploy`` command: parse options, call the API, render with rich. No logic of its own.

``app`` holds the typer app and the entry point; one module per command registers itself on import
(``models``, ``doctor``, ``export``, ``infer``, ``bench``, ``synth``); ``options`` declares the options
several commands share; ``tables`` renders results.
"""

from . import bench, doctor, export, infer, models, synth  # noqa: F401  (each registers its command)
from .app import app, main, run

__all__ = ["app", "main", "run"]
