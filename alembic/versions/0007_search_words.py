"""Product search reads names and descriptions word by word, as queries do.

PostgreSQL's text-search parser reads a word differently by what surrounds
it: in "Product-8339893911" it finds the signed integer "-8339893911", in
"Linen-6862e764d0" the compound "linen-6862e764d0" and its parts. A search
box's words are split on everything that is not a letter or a digit
(`catalog.domain.search_prefix_query`) and parsed one by one, so such a name
could never be found by its own words ("8339893911" is not "-8339893911").
Both sides now see the same words: the document is parsed after every run of
characters that is not a letter or a digit became one space
(`congocart_search_words`).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-25
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def _search_column(words: str) -> str:
    return f"""
    ALTER TABLE products ADD COLUMN search tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('english', {words.format("name")}), 'A')
        || setweight(to_tsvector('simple', {words.format("name")}), 'A')
        || setweight(to_tsvector('english', {words.format("description")}), 'B')
        || setweight(to_tsvector('simple', {words.format("description")}), 'B')
    ) STORED;
    CREATE INDEX products_search ON products USING gin (search);
    """


def upgrade() -> None:
    op.execute("""
    CREATE FUNCTION congocart_search_words(text) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    AS $$ SELECT regexp_replace($1, '[^[:alnum:]]+', ' ', 'g') $$;

    ALTER TABLE products DROP COLUMN search;
    """)
    op.execute(_search_column("congocart_search_words({})"))


def downgrade() -> None:
    op.execute("ALTER TABLE products DROP COLUMN search;")
    op.execute(_search_column("{}"))
    op.execute("DROP FUNCTION congocart_search_words(text);")
