"""One synthesized QR Pro stack per test session (synth with cdk-nag costs ~15 s).

See infra_synth_helpers.py: bundling is skipped, so no build/ and no network.
"""

from __future__ import annotations

from typing import Any

import pytest
from infra_synth_helpers import Synth, synth


@pytest.fixture(scope="session")
def synthesized() -> Synth:
    return synth()


@pytest.fixture(scope="session")
def template(synthesized: Synth) -> dict[str, Any]:
    return synthesized.template
