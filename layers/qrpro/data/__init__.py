"""Data access: the only package that calls AWS. One module per aggregate."""
