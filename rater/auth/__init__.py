"""Users, roles, login and role decorators."""
