"""The process definitions: flows.yaml read into frozen specs.

Processes, steps, forms, SLA policy, rules, calendar, cron, durations.
"""
