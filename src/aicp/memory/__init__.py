"""Memory: route memory, and the caches (exact key, local embeddings, vector index, guard)."""
