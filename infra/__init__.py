"""The QR Pro stack (CDK, Python).

The CDK's jsii runtime spawns ``node`` (``JSII_NODE``, else the first on PATH)
when ``aws_cdk`` is first imported. Unless told otherwise it runs on the
Node.js that ``package.json`` pins (``node_modules/.bin/node``, Node 24 LTS),
whoever imports ``infra``: ``make``, pytest, the local stack's synth; the
machine's own Node 20 is end of life.
"""

import os
from pathlib import Path

_NODE = Path(__file__).resolve().parent.parent / "node_modules" / ".bin" / "node"
if _NODE.exists():
    os.environ.setdefault("JSII_NODE", str(_NODE))
