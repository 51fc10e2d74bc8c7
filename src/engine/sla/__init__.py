"""Service levels: due times, reminders, overdue marks, escalations, the breach forecast and their sweeper."""
