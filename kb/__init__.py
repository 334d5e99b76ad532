"""Knowledge base: articles, categories and their search (see kb.search)."""
