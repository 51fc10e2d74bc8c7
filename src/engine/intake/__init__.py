"""Platform data coming in: exports and pushed events read into orders, refunds and reviews, and what they start."""
