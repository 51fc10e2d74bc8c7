"""People: users, tokens and passwords, principals and absence."""
