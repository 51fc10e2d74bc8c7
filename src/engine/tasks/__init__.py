"""Human tasks: the state machine, the one door for moves, actions, the inbox, four-eyes, bulk actions."""
