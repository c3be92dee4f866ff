"""The usagekeys function (``handler``)."""

from qrpro import lean

lean.install()
