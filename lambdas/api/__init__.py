"""The api function (``handler``): every ``/api/*`` route and the reference."""

from qrpro.api import lean

lean.install()
