"""Layer 2, what is kept on disk: atomic folders, the teacher cache and the run store."""
