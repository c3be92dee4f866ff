"""The authorizer function (``handler``)."""

from qrpro import lean

lean.install()
