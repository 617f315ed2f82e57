"""Types shared by the export steps: the batch range and what an artifact writer returns."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import InvalidOptionError


@dataclass(frozen=True)
class BatchRange:
    """Batch sizes an artifact must accept: TensorRT profiles and Core ML RangeDim use all three."""

    min: int = 1
    opt: int = 1
    max: int = 16

    @classmethod
    def parse(cls, text: str) -> BatchRange:
        """Parse ``MIN:OPT:MAX`` (or a single ``N`` meaning a static batch of N)."""
        parts = text.split(":")
        try:
            values = [int(p) for p in parts]
        except ValueError:
            raise InvalidOptionError(f"--batch: '{text}' is not MIN:OPT:MAX of integers (e.g. 1:4:16)") from None
        if len(values) == 1:
            values = values * 3
        if len(values) != 3 or not 1 <= values[0] <= values[1] <= values[2]:
            raise InvalidOptionError(f"--batch: '{text}' must be MIN:OPT:MAX with 1 <= MIN <= OPT <= MAX")
        return cls(*values)

    @property
    def static(self) -> bool:
        return self.min == self.max

    def __str__(self) -> str:
        return f"{self.min}:{self.opt}:{self.max}"


@dataclass
class WriteResult:
    """What an artifact writer produced, relative to the bundle directory."""

    primary: str  # the file (or .mlpackage dir) a backend loads
    files: list[str]  # every file written, for hashing
    notes: list[str] = field(default_factory=list)
    extra: dict = field(default_factory=dict)  # backend-specific manifest fields (e.g. TensorRT GPU key)

