"""The ``motion`` load profile: motion-triggered cameras sending bursts of frames.

A motion sensor fires at random moments, and the camera then sends a short run
of frames. Per camera, bursts start as a seeded Poisson process (``bursts`` per
minute) and each sends ``frames`` frames ``1/fps`` apart; bursts of one camera
never overlap. Arrivals are tagged with the camera id (``cam1`` ... ``camN``),
which the surveillance function takes as its camera (X-Scalezero-Tag), so a
burst exercises its alert merging.

    motion:cameras=4,bursts=2,frames=5,fps=2,seed=1
"""

import random
from dataclasses import dataclass

from scalezero.errors import ConfigError
from scalezero.loadgen.schedule import Arrival


@dataclass(frozen=True)
class Motion:
    """Bursts of frames per camera."""

    cameras: int = 4  # cameras, tagged cam1..camN
    bursts: float = 2.0  # bursts per camera per minute (mean of a Poisson process)
    frames: int = 5  # frames per burst
    fps: float = 2.0  # frames per second inside a burst
    seed: int = 0  # random seed; each (function, camera) pair gets its own stream

    def validate(self) -> None:
        for name, ok, rule in (("cameras", 1 <= self.cameras <= 1000, "in [1, 1000]"),
                               ("bursts", self.bursts > 0, "> 0"),
                               ("frames", self.frames >= 1, ">= 1"),
                               ("fps", self.fps > 0, "> 0")):
            if not ok:
                raise ConfigError(f"motion: {name} = {getattr(self, name)!r}, must be {rule}")

    def schedule(self, functions: list[str], duration_s: float) -> list[Arrival]:
        """Every frame of every burst of every camera, for each function, sorted by time."""
        self.validate()
        out = [a for f, fn in enumerate(functions) for cam in range(self.cameras)
               for a in self._camera(fn, f"cam{cam + 1}", duration_s,
                                     random.Random(f"{self.seed}/{f}/{cam}"))]
        return sorted(out, key=lambda a: a.t)

    def _camera(self, fn: str, camera: str, duration_s: float, rng: random.Random) -> list[Arrival]:
        rate = self.bursts / 60.0
        burst_s = (self.frames - 1) / self.fps
        t, out = rng.expovariate(rate), []
        while t < duration_s:
            out += [Arrival(t + k / self.fps, fn, camera) for k in range(self.frames)
                    if t + k / self.fps < duration_s]
            t += burst_s + 1 / self.fps + rng.expovariate(rate)
        return out
