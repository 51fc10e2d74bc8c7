"""Business rules of the deck as small pure functions; their parameters come from flows.yaml."""
