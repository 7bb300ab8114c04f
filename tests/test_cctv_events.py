"""The event state machine on synthetic detection sequences: one event per occurrence."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import pytest

from inference_service.cctv.config import EventPolicy, Schedule, TimeWindow, Zone
from inference_service.cctv.events import CameraEvents, EventAction, Observation, point_in_polygon, zone_of

LEFT = (10.0, 10.0, 30.0, 40.0)  # bottom-centre (20, 40)
RIGHT = (60.0, 10.0, 80.0, 40.0)  # bottom-centre (70, 40)
STEP = 0.5  # seconds between frames


@dataclass(frozen=True)
class Span:
    start: float
    end: float  # exclusive
    hazard: str = "FIRE-001"
    box: tuple[float, float, float, float] = LEFT
    conf: float = 0.9


def timeline(until: float, *spans: Span) -> list[tuple[float, list[Observation]]]:
    frames = []
    for i in range(round(until / STEP)):
        ts = i * STEP
        frames.append((ts, [Observation(s.hazard, s.box, s.conf) for s in spans if s.start <= ts < s.end]))
    return frames


def run(
    frames: Sequence[tuple[float, list[Observation]]],
    policy: EventPolicy,
    **kwargs,
) -> tuple[list[EventAction], CameraEvents]:
    counter = itertools.count(1)
    engine = CameraEvents("cam-1", policy, id_factory=lambda: f"e{next(counter)}", **kwargs)
    actions: list[EventAction] = []
    for ts, obs in frames:
        actions += engine.update(ts, obs, frame=f"frame@{ts}", width=100, height=100)
    actions += engine.finish()
    return actions, engine


def summary(actions: list[EventAction]) -> list[tuple]:
    """(kind, id, hazard, started_at, ended_at) per action."""
    return [(a.kind, a.event.id, a.event.hazard_id, a.event.started_at, a.event.ended_at) for a in actions]


POLICY = EventPolicy(persistence_s=1.0, close_after_s=2.0, cooldown_s=0.0)


@pytest.mark.parametrize(
    ("policy", "spans", "expected"),
    [
        # a blip shorter than the persistence time opens nothing
        (POLICY, [Span(1.0, 1.5)], []),
        # steady presence: opens after 1 s (started at the first sighting), closes 2 s after the last
        (POLICY, [Span(1.0, 4.0)], [("opened", "e1", "FIRE-001", 1.0, None), ("closed", "e1", "FIRE-001", 1.0, 3.5)]),
        # persistence 0: opens on the first frame
        (
            EventPolicy(persistence_s=0, close_after_s=2.0, cooldown_s=0),
            [Span(1.0, 1.5)],
            [("opened", "e1", "FIRE-001", 1.0, None), ("closed", "e1", "FIRE-001", 1.0, 1.0)],
        ),
        # a gap shorter than close_after (last seen 1.5, back at 3.0) is the same occurrence
        (
            POLICY,
            [Span(0.0, 2.0), Span(3.0, 5.0)],
            [("opened", "e1", "FIRE-001", 0.0, None), ("closed", "e1", "FIRE-001", 0.0, 4.5)],
        ),
        # a gap longer than close_after: two occurrences, two events
        (
            POLICY,
            [Span(0.0, 2.0), Span(5.0, 7.0)],
            [
                ("opened", "e1", "FIRE-001", 0.0, None),
                ("closed", "e1", "FIRE-001", 0.0, 1.5),
                ("opened", "e2", "FIRE-001", 5.0, None),
                ("closed", "e2", "FIRE-001", 5.0, 6.5),
            ],
        ),
        # the same, inside a 10 s cooldown: the second occurrence is held back
        (
            EventPolicy(persistence_s=1.0, close_after_s=2.0, cooldown_s=10.0),
            [Span(0.0, 2.0), Span(5.0, 7.0)],
            [("opened", "e1", "FIRE-001", 0.0, None), ("closed", "e1", "FIRE-001", 0.0, 1.5)],
        ),
        # a hazard that comes back during the cooldown and stays opens once the cooldown is over
        # (ended 1.5 + cooldown 5 = 6.5), started at its first sighting
        (
            EventPolicy(persistence_s=1.0, close_after_s=2.0, cooldown_s=5.0),
            [Span(0.0, 2.0), Span(4.0, 8.0)],
            [
                ("opened", "e1", "FIRE-001", 0.0, None),
                ("closed", "e1", "FIRE-001", 0.0, 1.5),
                ("opened", "e2", "FIRE-001", 4.0, None),
                ("closed", "e2", "FIRE-001", 4.0, 7.5),
            ],
        ),
        # two fires at once on one camera: one event for the camera+hazard
        (
            POLICY,
            [Span(0.0, 3.0, box=LEFT), Span(1.0, 4.0, box=RIGHT)],
            [("opened", "e1", "FIRE-001", 0.0, None), ("closed", "e1", "FIRE-001", 0.0, 3.5)],
        ),
        # two hazards: one event each
        (
            POLICY,
            [Span(0.0, 3.0), Span(0.0, 3.0, hazard="FIRE-002", box=RIGHT)],
            [
                ("opened", "e1", "FIRE-001", 0.0, None),
                ("opened", "e2", "FIRE-002", 0.0, None),
                ("closed", "e1", "FIRE-001", 0.0, 2.5),
                ("closed", "e2", "FIRE-002", 0.0, 2.5),
            ],
        ),
        # a fire that moves across the frame (no overlap frame to frame) still counts as persistent
        # while any sighting keeps the open event alive
        (
            POLICY,
            [Span(0.0, 1.5, box=LEFT), Span(1.5, 3.0, box=RIGHT)],
            [("opened", "e1", "FIRE-001", 0.0, None), ("closed", "e1", "FIRE-001", 0.0, 2.5)],
        ),
    ],
)
def test_event_sequences(policy: EventPolicy, spans: list[Span], expected: list[tuple]):
    actions, _ = run(timeline(12.0, *spans), policy)
    assert summary(actions) == expected


def test_source_end_closes_open_events_at_the_last_sighting():
    actions, engine = run(timeline(3.0, Span(0.0, 3.0)), POLICY)
    assert summary(actions)[-1] == ("closed", "e1", "FIRE-001", 0.0, 2.5)
    assert engine.open_events() == []


def test_best_evidence_is_the_highest_confidence_sighting():
    frames = [
        (0.0, [Observation("FIRE-001", LEFT, 0.6)]),
        (0.5, [Observation("FIRE-001", LEFT, 0.95)]),  # before the event opens: still counts
        (1.0, [Observation("FIRE-001", LEFT, 0.7)]),
        (1.5, [Observation("FIRE-001", RIGHT, 0.8), Observation("FIRE-001", LEFT, 0.5)]),
    ]
    actions, _ = run(frames, POLICY)
    opened, closed = actions
    assert opened.event.best.frame == "frame@0.5" and opened.event.best.confidence == pytest.approx(0.95)
    assert closed.event.peak_confidence == pytest.approx(0.95)
    assert closed.event.best.box == LEFT
    assert closed.event.frames == 4  # one per frame with a sighting, however many boxes
    assert (closed.event.opened_at, closed.event.last_seen) == (1.0, 1.5)


def test_the_event_keeps_the_peak_even_when_it_comes_late():
    frames = [(t * STEP, [Observation("FIRE-001", LEFT, c)]) for t, c in enumerate([0.5, 0.5, 0.5, 0.99, 0.6])]
    (_, closed) = run(frames, POLICY)[0]
    assert closed.event.best.frame == "frame@1.5" and closed.event.peak_confidence == pytest.approx(0.99)


ZONES = (
    Zone(name="left-half", mode="include", polygon=((0, 0), (50, 0), (50, 100), (0, 100))),
    Zone(name="right-half", mode="include", units="relative", polygon=((0.5, 0), (1, 0), (1, 1), (0.5, 1))),
    Zone(name="stove", mode="exclude", polygon=((60, 30), (80, 30), (80, 50), (60, 50))),
)


@pytest.mark.parametrize(
    ("box", "zones", "expected"),
    [
        (LEFT, ZONES, (True, "left-half")),
        (RIGHT, ZONES, (False, None)),  # bottom-centre (70, 40) is in the excluded stove
        ((60.0, 0.0, 80.0, 20.0), ZONES, (True, "right-half")),  # relative polygon, (70, 20)
        ((60.0, 0.0, 80.0, 20.0), ZONES[:1], (False, None)),  # include zones exist, none contains it
        (RIGHT, (), (True, None)),  # no zones: the whole frame counts
        (RIGHT, ZONES[2:], (False, None)),  # only an exclude zone
        (LEFT, ZONES[2:], (True, None)),
    ],
)
def test_zone_of_uses_the_bottom_centre(box, zones, expected):
    assert zone_of(box, zones, 100, 100) == expected


@pytest.mark.parametrize(
    ("point", "inside"),
    [
        ((3, 3), True),  # in the full-width bottom bar
        ((7, 2), True),
        ((9.99, 9.99), True),  # in the right arm
        ((2, 7), False),  # in the notch of the L
        ((15, 5), False),  # right of it
        ((5, -1), False),  # above it
    ],
)
def test_point_in_polygon_on_a_concave_l_shape(point, inside):
    polygon = [(0, 0), (10, 0), (10, 10), (5, 10), (5, 5), (0, 5)]  # 10×10 square minus its x<5, y>5 quarter
    assert point_in_polygon(*point, polygon) is inside


def test_zones_decide_what_counts_and_name_the_event():
    frames = timeline(4.0, Span(0.0, 4.0, box=LEFT), Span(0.0, 4.0, hazard="FIRE-002", box=RIGHT))
    actions, engine = run(frames, POLICY, zones=ZONES)
    assert {(a.kind, a.event.hazard_id, a.event.zone) for a in actions} == {
        ("opened", "FIRE-001", "left-half"),
        ("closed", "FIRE-001", "left-half"),
    }
    assert engine.stats.outside_zones == 8  # FIRE-002 on the stove in all 8 frames


def test_hazards_of_interest_and_min_confidence_filter_observations():
    frames = timeline(4.0, Span(0.0, 4.0, conf=0.4), Span(0.0, 4.0, hazard="CONST-001", box=RIGHT, conf=0.9))
    policy = EventPolicy(persistence_s=1.0, close_after_s=2.0, cooldown_s=0.0, min_confidence=0.5)
    assert run(frames, policy, hazards=["FIRE-001"])[0] == []  # FIRE-001 too weak, CONST-001 not wanted
    assert {a.event.hazard_id for a in run(frames, policy)[0]} == {"CONST-001"}


def test_schedule_gates_frames_outside_the_armed_windows():
    start = dt.datetime(2026, 11, 30, 7, 59, 58, tzinfo=dt.UTC).timestamp()  # Monday 07:59:58 UTC
    schedule = Schedule(timezone="UTC", windows=(TimeWindow(start=dt.time(8, 0), end=dt.time(9, 0)),))
    frames = [(start + ts, obs) for ts, obs in timeline(6.0, Span(0.0, 6.0))]
    actions, engine = run(frames, POLICY, schedule=schedule)
    opened = actions[0].event
    assert engine.stats.frames_unarmed == 4  # 07:59:58.0 … 07:59:59.5
    assert opened.started_at == start + 2.0  # the first armed sighting
    assert opened.opened_at == start + 3.0


def test_tick_closes_events_of_a_camera_that_stopped_sending_frames():
    counter = itertools.count(1)
    engine = CameraEvents("cam", POLICY, id_factory=lambda: f"e{next(counter)}")
    for ts, obs in timeline(2.0, Span(0.0, 2.0)):
        engine.update(ts, obs, None, 100, 100)
    assert engine.tick(3.5) == []  # last seen 1.5: absent for 2 s, not more
    (closed,) = engine.tick(3.6)
    assert closed.kind == "closed" and closed.event.ended_at == 1.5


def _flags(actions: list[EventAction]) -> list[tuple[str, bool, bool, bool]]:
    return [(a.kind, a.event.suspected, a.event.unconfirmed, a.event.alarm) for a in actions]


@pytest.mark.parametrize(
    ("marks", "expected"),
    [
        # every sighting by a confirming rule on a clear frame: an alarm
        ([(False, False)] * 4, [("opened", False, False, True), ("closed", False, False, True)]),
        # every sighting a suspicion: suspected from start to end, never an alarm
        ([(True, False)] * 4, [("opened", True, False, False), ("closed", True, False, False)]),
        # every sighting on a doubtful (washed-out, dark, featureless) frame: unconfirmed, never an alarm
        ([(False, True)] * 4, [("opened", False, True, False), ("closed", False, True, False)]),
        # one confirmed sighting on a clear frame before it opens makes it a detection at once ...
        (
            [(True, True), (False, False), (True, True), (True, True)],
            [("opened", False, False, True), ("closed", False, False, True)],
        ),
        # ... and after it opened, at that sighting: the alarm goes out then (once), not at the close
        (
            [(True, False), (True, False), (True, False), (False, False), (True, False), (False, False)],
            [
                ("opened", True, False, False),
                ("confirmed", False, False, True),
                ("closed", False, False, True),
            ],
        ),
    ],
)
def test_an_event_is_suspected_or_unconfirmed_until_a_confirmed_sighting_on_a_clear_frame(marks, expected):
    frames = [
        (i * STEP, [Observation("FIRE-006", LEFT, 0.8, suspected=s, unconfirmed=u)]) for i, (s, u) in enumerate(marks)
    ]
    actions, _ = run(frames, POLICY)
    assert _flags(actions) == expected
