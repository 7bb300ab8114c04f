"""HTTP API: a thin FastAPI layer over :mod:`inference_service.runtime` and the taxonomy."""
