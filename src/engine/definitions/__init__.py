"""The process definitions: flows.yaml read into frozen specs (processes, steps, forms, SLA policy, rules, calendar, cron, durations)."""
