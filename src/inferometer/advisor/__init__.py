"""The deployment advisor: which runtime, precision, process x thread layout and batching carry
the most load on this machine under a latency bound (or give the lowest tail at a given load),
within memory and accuracy limits, and whether the winner is beyond noise.

space    the candidates and their cheap grouping (one probe per runtime x layout)
search   the pure decision logic over a `Bench` (testable with a cost model, no processes)
bench    the real measurements: instance pools, closed-loop probes, server-scenario scans
record   storing every measurement as it finishes, and replaying them on --resume
advise   the recommendation's words, deploy.json and the runtime's snippet
"""
