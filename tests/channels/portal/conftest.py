"""Portal test fixtures: the KB fixture articles."""

from tests.kb.conftest import kb_articles  # noqa: F401  (fixture)
