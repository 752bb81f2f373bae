"""REST API handlers, one module per concept; ``routes.py`` wires them."""
