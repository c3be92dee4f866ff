"""The events function (``handler``)."""

from qrpro import lean

lean.install()
