"""CCTV and video batch detection: camera streams in, de-duplicated hazard events out.

Serving side only: no torch, no ultralytics; Ray is imported lazily by :mod:`.ray_engine` alone.
Pipeline: :mod:`.sources` (one reader thread per camera) → :mod:`.batcher` (frames from all cameras
into one session call) → detector → taxonomy → :mod:`.events` (tracking, persistence, cooldown, zones,
schedule) → :mod:`.store` (SQLite or PostgreSQL, with a webhook outbox) → :mod:`.webhook` and :mod:`.api`.
"""
