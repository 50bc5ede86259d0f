"""Prompt embedders: the static WordPiece embedder and the full MiniLM encoder."""
