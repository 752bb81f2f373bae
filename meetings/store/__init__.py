"""Durable state: SQLAlchemy Core tables, the Database handle, migrations, and files."""
