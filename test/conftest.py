"""Shared test configuration: hypothesis runs derandomized, so every CI run sees the same examples."""

from hypothesis import HealthCheck, settings

settings.register_profile(
    "vispeak", derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True
)
settings.load_profile("vispeak")
