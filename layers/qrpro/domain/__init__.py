"""Pure rules of the contract: no AWS calls in this package."""
