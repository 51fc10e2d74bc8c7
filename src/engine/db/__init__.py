"""The database: engines and sessions, models, column types, migrations, SQLite checkpoints, stored request answers."""
