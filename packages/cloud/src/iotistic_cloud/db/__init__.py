"""Database access: engine, tables and the migrations shipped with the package."""
