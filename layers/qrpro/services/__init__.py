"""Use cases: the rules and state transitions between the handlers and the repositories in ``qrpro.data``."""
