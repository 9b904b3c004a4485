"""Recall: earlier turns of a conversation retrieved by meaning and by words.

- `chunks`: a message's text cut into overlapping pieces of a few hundred tokens.
- `embedders`: the bundled offline embedder and the providers' embeddings endpoints.
- `store`: the chunks' vectors and lexical matches in Postgres (the only SQL on vectors).
- `ranking`: fusing the two rankings and fitting the winners into a budget.
"""
