"""HTTP routes: one module per simulated system, plus inspection and control."""
