"""How the learned strategy does against fixed routes and round-robin on a simulated fleet."""
