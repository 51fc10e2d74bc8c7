"""Reports: task KPIs, the daily report, period figures and the dashboard's workload counts."""
