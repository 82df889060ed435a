"""Case bundles in and out of the store: load (validated whole, idempotent) and export."""
