"""Developer and operator tools: the local stack, the token CLI, the simulator, benchmarks."""
