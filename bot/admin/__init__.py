"""Community-manager commands: reports and broadcasts, for admin ids from settings only."""
