"""The Lambda functions: one package per function, each a thin handler."""
