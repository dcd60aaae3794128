"""Side-by-side benchmarks of ddpm_jax and ddpm_torch: same model, same work, one run.

``python -m benchmarks`` (or ``ddpm-bench``) measures training throughput, forward
latency, 1000-step sampling, compile times, peak memory and achieved GFLOP/s of both
frameworks, each in its own worker process, and writes JSON, a markdown table and a plot.
See benchmarks/README.md.
"""
