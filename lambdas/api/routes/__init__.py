"""The API's routes, one router per area of the contract."""
