"""The tools the benchmarks share, one job a module; each benchmark is one script in bench/.

services      free ports, processes with an environment of their own, stopping them together
databases     a fresh SQLite file or PostgreSQL database for one run, and database sizes
prefect_home  a new Prefect home from a migrated template (the test suite names one)
stack         an isolated ecomflow stack: database, users, Prefect server, API and worker
staff         one person using the API over HTTP
prefect_api   flow-run counts and state histories read from a Prefect server
sampling      CPU seconds and memory of process trees, the machine's load
timing        timed loops, percentiles and summaries of durations
profiles      py-spy profiles and Prefect's access log: where the CPU and the calls go
load          people working flat out against a system, and the figures of the window
seeding       bulk rows of a big database: instances, tasks, audit events, users
query_plans   the SELECTs a call sends, and their plans
logs          ERROR and WARNING lines in a run's logs
report        printing a benchmark's rows
options       the command-line options every benchmark takes
recording     a benchmark's entry in RESULTS.md, replaced in place (history is in git)
"""
