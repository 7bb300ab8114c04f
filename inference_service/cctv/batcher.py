"""Frames from all cameras into one batch for one ``Detector.detect_batch`` call.

Batches form by themselves: while the detector runs, every reader fills its slot, and the next call
takes what is there, round-robin across cameras so a busy recording cannot starve a live camera. Each
camera's frames stay in order. ``Detector.detect_batch`` runs the batch as one session call when the
model has a dynamic batch axis and in chunks of its fixed batch otherwise (a batch-1 export still
works, one frame per call).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

from inference_service.cctv.sources import CameraReader, Frame


@dataclass
class BatchStats:
    batches: int = 0
    frames: int = 0
    largest: int = 0
    multi_camera: int = 0  # batches holding frames of more than one camera
    sizes: dict[int, int] = field(default_factory=dict)

    def add(self, batch: Sequence[Frame]) -> None:
        self.batches += 1
        self.frames += len(batch)
        self.largest = max(self.largest, len(batch))
        self.sizes[len(batch)] = self.sizes.get(len(batch), 0) + 1
        if len({f.camera_id for f in batch}) > 1:
            self.multi_camera += 1


class Batcher:
    def __init__(
        self,
        readers: Sequence[CameraReader],
        arrived: threading.Event,
        stop: threading.Event,
        max_batch: int = 16,
    ) -> None:
        self.readers = list(readers)
        self.arrived = arrived
        self.stop = stop
        self.max_batch = max(1, max_batch)
        self.stats = BatchStats()
        self._start = 0

    def _collect(self) -> list[Frame]:
        batch: list[Frame] = []
        n = len(self.readers)
        progress = True
        while progress and len(batch) < self.max_batch:
            progress = False
            for k in range(n):
                frame = self.readers[(self._start + k) % n].slot.take()
                if frame is not None:
                    batch.append(frame)
                    progress = True
                    if len(batch) >= self.max_batch:
                        break
        self._start = (self._start + 1) % max(1, n)
        return batch

    def done(self) -> bool:
        return all(r.finished.is_set() and len(r.slot) == 0 for r in self.readers)

    def next_batch(self, timeout: float = 0.5) -> list[Frame] | None:
        """The next batch; ``[]`` when nothing arrived within ``timeout``; ``None`` once every source has
        ended and been drained, or ``stop`` is set."""
        self.arrived.clear()  # clear before looking, so a frame arriving meanwhile still wakes us
        if self.stop.is_set():
            return None
        batch = self._collect()
        if batch:
            self.stats.add(batch)
            return batch
        if self.done():
            return None
        self.arrived.wait(timeout)
        return []
