"""The error a generation run stops with when it cannot go on (server down, journal from another setup)."""


class GenerationError(RuntimeError):
    """Raised to stop a run; every finished request is already in the journal, so re-running resumes."""
