"""One object per graph owns how it is fed and decoded: ``Detector``, ``PoseEstimator``, ``Lifter``.

Each is a runner (a Session's ``run`` or any ``run(feed) -> outputs``) plus the graph's ``GraphInfo``, with
``preprocess -> run -> postprocess``. Above ``ops`` (the numpy maths), ``zoo`` and ``backends``; below
``export``, ``synth``, ``pipeline`` and ``bench``, which all feed graphs through these objects.
"""

from .detector import Detector
from .graph import GraphInfo, Stage
from .lifter import Lifter
from .pose import Crops, PoseEstimator

__all__ = ["Crops", "Detector", "GraphInfo", "Lifter", "PoseEstimator", "Stage"]
