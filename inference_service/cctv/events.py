"""From per-frame hazard findings to events: one event per occurrence, not one per frame.

Pure state machine, one :class:`CameraEvents` per camera, fed frame by frame with timestamps:

1. schedule gating: outside the armed windows a frame counts as showing nothing;
2. filters: hazards of interest, ``min_confidence``, zones (the bottom-centre of a box must lie in an
   include zone, when the camera has any, and in no exclude zone);
3. tracking per hazard (:class:`~.tracking.Tracker`); a track must last ``persistence_s`` before it
   can open an event;
4. at most one open event per camera+hazard: while it is open, every sighting of that hazard keeps it
   alive; after an event ends, a new one for the same camera+hazard waits until ``cooldown_s`` has
   passed since that end (an occurrence still there then opens it);
5. the event closes once the hazard has been absent for more than ``close_after_s`` (checked on every
   frame and on :meth:`CameraEvents.tick`); its end time is the last sighting.

The best evidence is the observation with the highest confidence, kept as an opaque frame reference
(the scanner renders the JPEG only when the event opens and closes).

An event is *suspected* while every sighting of it so far came from a rule that only suspects the hazard
(the taxonomy's ``suspected: true``), and *unconfirmed* while every sighting was on a doubtful frame (washed
out, too dark, featureless): one confirmed sighting on a clear frame makes it a detection (an open event
that turns so yields a ``confirmed`` action, so the alarm goes out then). Neither kind is an alarm: a person
confirms it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from inference_service.cctv.config import EventPolicy, Schedule, Zone
from inference_service.cctv.tracking import Box, Tracker


def _new_id() -> str:
    return uuid.uuid4().hex


@dataclass(frozen=True)
class Observation:
    hazard_id: str
    box: Box  # xyxy in frame pixels
    confidence: float
    suspected: bool = False  # raised by a rule that only suspects the hazard
    unconfirmed: bool = False  # seen on a frame with a warning (washed out, too dark, featureless)


@dataclass(frozen=True, eq=False)
class Evidence:
    frame: Any  # opaque to this module: whatever the scanner passed with the frame
    ts: float
    box: Box
    confidence: float


@dataclass(frozen=True, eq=False)
class EventRecord:
    id: str
    camera_id: str
    hazard_id: str
    zone: str | None
    status: Literal["open", "closed"]
    started_at: float  # first sighting of the track that opened it
    opened_at: float  # when persistence was reached
    last_seen: float
    ended_at: float | None  # last sighting, once closed
    peak_confidence: float
    frames: int  # frames in which the hazard was seen (the opening track's before it opened, included)
    best: Evidence
    suspected: bool = False  # every sighting so far was a suspicion
    unconfirmed: bool = False  # every sighting so far was on a doubtful frame

    @property
    def alarm(self) -> bool:
        """Raise it as an alarm at its severity: neither a suspicion nor seen only on doubtful frames."""
        return not (self.suspected or self.unconfirmed)


@dataclass(frozen=True, eq=False)
class EventAction:
    kind: Literal["opened", "confirmed", "closed"]  # confirmed: an open suspected/unconfirmed event became an alarm
    event: EventRecord


@dataclass
class CameraStats:
    frames: int = 0
    frames_unarmed: int = 0
    outside_zones: int = 0  # observations dropped by zones
    suppressed_tracks: int = 0  # persistent tracks held back by the cooldown (counted once each)
    frames_view_checked: int = 0  # frames whose view was checked (every VIEW_CHECK_EVERY-th sampled frame)
    frames_view_warning: int = 0  # of those, nearly uniform: washed out, too dark or featureless
    view_warning: str | None = None  # the last checked frame's warning code: a blinded or covered camera


def point_in_polygon(x: float, y: float, polygon: Sequence[tuple[float, float]]) -> bool:
    """Even-odd ray casting; points exactly on an edge may fall either way."""
    inside = False
    n = len(polygon)
    for i in range(n):
        x1, y1 = polygon[i]
        x2, y2 = polygon[(i + 1) % n]
        if (y1 > y) != (y2 > y) and x < (x2 - x1) * (y - y1) / (y2 - y1) + x1:
            inside = not inside
    return inside


def zone_of(box: Box, zones: Sequence[Zone], width: int, height: int) -> tuple[bool, str | None]:
    """``(counts, zone name)`` for a box: its bottom-centre decides."""
    x, y = (box[0] + box[2]) / 2, box[3]
    for z in zones:
        if z.mode == "exclude" and point_in_polygon(x, y, z.points(width, height)):
            return False, None
    includes = [z for z in zones if z.mode == "include"]
    if not includes:
        return True, None
    for z in includes:
        if point_in_polygon(x, y, z.points(width, height)):
            return True, z.name
    return False, None


@dataclass
class _HazardState:
    tracker: Tracker
    open: EventRecord | None = None
    last_end: float | None = None
    best_by_track: dict[int, Evidence] = field(default_factory=dict)
    zone_by_track: dict[int, str | None] = field(default_factory=dict)
    suppressed: set[int] = field(default_factory=set)
    confirmed_tracks: set[int] = field(default_factory=set)  # a sighting by a confirming (not suspecting) rule
    clear_tracks: set[int] = field(default_factory=set)  # a sighting on a frame without a warning


class CameraEvents:
    """The event state of one camera. Not thread-safe: feed it from one thread, in time order."""

    def __init__(
        self,
        camera_id: str,
        policy: EventPolicy,
        *,
        zones: Sequence[Zone] = (),
        schedule: Schedule | None = None,
        hazards: Sequence[str] | None = None,
        id_factory: Callable[[], str] = _new_id,
    ) -> None:
        self.camera_id = camera_id
        self.policy = policy
        self.zones = tuple(zones)
        self.schedule = schedule
        self.hazards = frozenset(hazards) if hazards is not None else None
        self.id_factory = id_factory
        self.stats = CameraStats()
        self._state: dict[str, _HazardState] = {}

    def open_events(self) -> list[EventRecord]:
        return [s.open for s in self._state.values() if s.open is not None]

    def _hazard(self, hazard_id: str) -> _HazardState:
        if hazard_id not in self._state:
            self._state[hazard_id] = _HazardState(Tracker(self.policy.track_iou, max_age_s=self.policy.close_after_s))
        return self._state[hazard_id]

    def _accept(
        self, ts: float, observations: Sequence[Observation], width: int, height: int
    ) -> list[tuple[Observation, str | None]]:
        if self.schedule is not None and not self.schedule.armed(ts):
            self.stats.frames_unarmed += 1
            return []
        floor = self.policy.min_confidence or 0.0
        kept = []
        for obs in observations:
            if (self.hazards is not None and obs.hazard_id not in self.hazards) or obs.confidence < floor:
                continue
            counts, zone = zone_of(obs.box, self.zones, width, height)
            if not counts:
                self.stats.outside_zones += 1
                continue
            kept.append((obs, zone))
        return kept

    def update(
        self, ts: float, observations: Sequence[Observation], frame: Any, width: int, height: int
    ) -> list[EventAction]:
        """Feed one frame (epoch seconds ``ts``) and its hazard observations; returns what happened."""
        self.stats.frames += 1
        actions = self.tick(ts)  # a hazard gone long enough ends before this frame's sightings count
        by_hazard: dict[str, list[tuple[Observation, str | None]]] = {}
        for obs, zone in self._accept(ts, observations, width, height):
            by_hazard.setdefault(obs.hazard_id, []).append((obs, zone))
        for hazard_id in by_hazard:
            self._hazard(hazard_id)
        for hazard_id, state in self._state.items():
            seen = by_hazard.get(hazard_id, [])
            tracks = state.tracker.update([o.box for o, _ in seen], [o.confidence for o, _ in seen], ts)
            for tid in [t for t in state.best_by_track if t not in state.tracker.tracks]:
                del state.best_by_track[tid]
                state.zone_by_track.pop(tid, None)
                state.suppressed.discard(tid)
                state.confirmed_tracks.discard(tid)
                state.clear_tracks.discard(tid)
            counted = False  # whether this frame already counted towards the open event
            for track, (obs, zone) in zip(tracks, seen, strict=True):
                evidence = Evidence(frame, ts, obs.box, obs.confidence)
                best = state.best_by_track.get(track.id)
                if best is None or evidence.confidence > best.confidence:
                    state.best_by_track[track.id] = evidence
                state.zone_by_track.setdefault(track.id, zone)
                if not obs.suspected:
                    state.confirmed_tracks.add(track.id)
                if not obs.unconfirmed:
                    state.clear_tracks.add(track.id)
                if state.open is not None:  # any sighting keeps the open event alive
                    was_alarm = state.open.alarm
                    state.open = self._join(state.open, state.best_by_track[track.id], obs, ts, counted)
                    counted = True
                    if state.open.alarm and not was_alarm:  # raise the alarm now, not when it closes
                        actions.append(EventAction("confirmed", state.open))
                    continue
                if track.age(ts) < self.policy.persistence_s:
                    continue
                if state.last_end is not None and ts - state.last_end < self.policy.cooldown_s:
                    if track.id not in state.suppressed:
                        state.suppressed.add(track.id)
                        self.stats.suppressed_tracks += 1
                    continue
                state.open = EventRecord(
                    id=self.id_factory(),
                    camera_id=self.camera_id,
                    hazard_id=hazard_id,
                    zone=state.zone_by_track[track.id],
                    status="open",
                    started_at=track.first_seen,
                    opened_at=ts,
                    last_seen=ts,
                    ended_at=None,
                    peak_confidence=state.best_by_track[track.id].confidence,
                    frames=track.hits,
                    best=state.best_by_track[track.id],
                    suspected=track.id not in state.confirmed_tracks,
                    unconfirmed=track.id not in state.clear_tracks,
                )
                counted = True
                actions.append(EventAction("opened", state.open))
        return actions

    @staticmethod
    def _join(event: EventRecord, best: Evidence, obs: Observation, ts: float, counted: bool) -> EventRecord:
        return replace(
            event,
            last_seen=ts,
            peak_confidence=max(event.peak_confidence, obs.confidence),
            frames=event.frames + (0 if counted else 1),
            best=best if best.confidence > event.best.confidence else event.best,
            suspected=event.suspected and obs.suspected,
            unconfirmed=event.unconfirmed and obs.unconfirmed,
        )

    def tick(self, ts: float) -> list[EventAction]:
        """Close events whose hazard has been absent for more than ``close_after_s`` at ``ts``."""
        actions = []
        for state in self._state.values():
            if state.open is not None and ts - state.open.last_seen > self.policy.close_after_s:
                actions.append(self._close(state))
        return actions

    def finish(self) -> list[EventAction]:
        """The source ended: close every open event at its last sighting and forget all tracks."""
        actions = [self._close(s) for s in self._state.values() if s.open is not None]
        self._state.clear()
        return actions

    @staticmethod
    def _close(state: _HazardState) -> EventAction:
        assert state.open is not None
        closed = replace(state.open, status="closed", ended_at=state.open.last_seen)
        state.open = None
        state.last_end = closed.ended_at
        return EventAction("closed", closed)
