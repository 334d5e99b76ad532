"""Web blueprints: short translators from HTTP to one service call."""
