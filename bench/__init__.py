"""Benchmarks of ecomflow on a real, isolated stack: `python -m bench.turnaround`, `python -m bench.waiting_memory`."""
