"""Events: audit, the outbox and its dispatcher, notification routing and signed webhooks."""
