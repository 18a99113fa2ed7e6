// swiftproc-demo: a small HTTP server for samples, tests and benchmarks (being written).
print("swiftproc-demo")
