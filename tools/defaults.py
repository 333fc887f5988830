"""Defaults shared by the run settings and the tool services (kept import-light on purpose)."""

DEFAULT_PROFILE = "tiny"
DEFAULT_WORKSPACE = "~/.cache/vitron/workspace"
