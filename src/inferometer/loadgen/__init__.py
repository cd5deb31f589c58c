"""Latency-bounded throughput: server/offline scenarios, QPS scans, multi-instance serving.
The load generator owns timing; runtime instances only run."""
