"""One construct per concern of the QR Pro stack.

Never import this package as top-level ``constructs`` (it would shadow the
``constructs`` library): ``infra/app.py`` puts the repository root, not
``infra/``, on ``sys.path``.
"""
