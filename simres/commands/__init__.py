"""Click commands that live outside cli.py (one module per area); cli.py registers them."""
