"""The database: engines and sessions, the models, column types, migrations, SQLite checkpoints, stored request answers."""
