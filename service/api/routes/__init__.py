"""One module per group of routes; each stays thin and calls the engine, the store or a report."""
