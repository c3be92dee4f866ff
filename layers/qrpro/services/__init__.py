"""Use cases: every rule and state transition, over the repositories of ``qrpro.data``."""
