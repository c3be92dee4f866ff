"""Pure rules of docs/api.md: no AWS calls in this package."""
