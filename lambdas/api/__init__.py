"""The api function (``handler``): every ``/api/*`` route and the reference."""

from qrpro import lean

lean.install()
