"""Defaults shared by the run settings and the tool services (kept import-light on purpose)."""

DEFAULT_PROFILE = "nano"
"""The profile of `vitron chat`, `run`, `demo` and Studio unless VITRON_PROFILE or --profile says
otherwise: trained here on the shapes world (tools/profiles/nano/README.md). Tests use `tiny`."""
DEFAULT_WORKSPACE = "~/.cache/vitron/workspace"
MAX_SEED = 2**32 - 1
"""The largest seed a generation call or a run (``Context.seed``) may name (torch's CPU generator
takes 64 bits; diffusers' examples and UIs use 32)."""
