"""A small multi-object tracker for one camera and one hazard: greedy IoU, then centroid distance.

Pure and deterministic. Frames from CCTV are sampled sparsely (often 1–5 per second), so a box may jump
further than IoU can follow; the centroid fallback links boxes whose centres lie within
``centroid_factor`` × half the larger box diagonal.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

from inference_service.detections import box_iou

Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class Track:
    id: int
    box: Box  # latest box
    confidence: float  # latest confidence
    first_seen: float  # epoch seconds
    last_seen: float
    hits: int  # frames in which it was observed

    def age(self, ts: float) -> float:
        """Seconds since the track started."""
        return ts - self.first_seen


def _centres(boxes: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    return ((boxes[:, :2] + boxes[:, 2:]) / 2).astype(np.float32)


def _half_diagonals(boxes: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    return (np.hypot(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]) / 2).astype(np.float32)


def greedy_pairs(affinity: npt.NDArray[np.float32], minimum: float) -> list[tuple[int, int]]:
    """Pairs (row, col) taken best-first with ``affinity >= minimum``, each row and col at most once."""
    pairs: list[tuple[int, int]] = []
    if affinity.size == 0:
        return pairs
    order = np.argsort(-affinity, axis=None, kind="stable")
    rows: set[int] = set()
    cols: set[int] = set()
    for flat in order:
        r, c = divmod(int(flat), affinity.shape[1])
        if affinity[r, c] < minimum:
            break
        if r in rows or c in cols:
            continue
        rows.add(r)
        cols.add(c)
        pairs.append((r, c))
    return pairs


class Tracker:
    def __init__(self, iou_threshold: float = 0.2, max_age_s: float = 5.0, centroid_factor: float = 1.0) -> None:
        self.iou_threshold = iou_threshold
        self.max_age_s = max_age_s
        self.centroid_factor = centroid_factor
        self.tracks: dict[int, Track] = {}
        self._next_id = 1

    def expire(self, ts: float) -> list[Track]:
        """Drop tracks unseen for more than ``max_age_s``; returns them."""
        gone = [t for t in self.tracks.values() if ts - t.last_seen > self.max_age_s]
        for t in gone:
            del self.tracks[t.id]
        return gone

    def update(self, boxes: npt.ArrayLike, scores: npt.ArrayLike, ts: float) -> list[Track]:
        """Associate this frame's boxes ``(N, 4)`` with tracks; one track per box, in box order."""
        obs = np.asarray(boxes, np.float32).reshape(-1, 4)
        conf = np.asarray(scores, np.float32).reshape(-1)
        self.expire(ts)
        live = list(self.tracks.values())
        assigned: dict[int, Track] = {}
        if live and len(obs):
            prev = np.asarray([t.box for t in live], np.float32)
            matched_rows: set[int] = set()
            for r, c in greedy_pairs(box_iou(prev, obs), max(self.iou_threshold, 1e-6)):
                assigned[c] = live[r]
                matched_rows.add(r)
            free_rows = [r for r in range(len(live)) if r not in matched_rows]
            free_cols = [c for c in range(len(obs)) if c not in assigned]
            if free_rows and free_cols:
                dist = np.linalg.norm(_centres(prev[free_rows])[:, None] - _centres(obs[free_cols])[None], axis=2)
                reach = self.centroid_factor * np.maximum(
                    _half_diagonals(prev[free_rows])[:, None], _half_diagonals(obs[free_cols])[None]
                )
                closeness = np.where(dist <= reach, 1.0 / (1.0 + dist), 0.0).astype(np.float32)
                for r, c in greedy_pairs(closeness, 1e-9):
                    assigned[free_cols[c]] = live[free_rows[r]]
        out: list[Track] = []
        for i in range(len(obs)):
            box: Box = (float(obs[i, 0]), float(obs[i, 1]), float(obs[i, 2]), float(obs[i, 3]))
            prior = assigned.get(i)
            if prior is None:
                track = Track(self._next_id, box, float(conf[i]), ts, ts, 1)
                self._next_id += 1
            else:
                track = replace(prior, box=box, confidence=float(conf[i]), last_seen=ts, hits=prior.hits + 1)
            self.tracks[track.id] = track
            out.append(track)
        return out
