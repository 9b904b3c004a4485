"""The model providers, in one place.

- `presets`: the built-in providers and models, copied into the catalogue on migrate, and
  the embedding models with their prices, sizes and batch limits.
- `catalogue`: reads of the catalogue: which providers the environment enables (their
  credentials), which chat models can be chosen, the embedder EMBEDDING_MODEL names.
- `profiles`: how a conversation's settings become one provider's request fields.
- `requests`: the one request builder, for replies and background calls alike.
- `transport`: the SDK seam, the only module that imports `openai`: typed stream events in,
  our own exceptions out; embeddings through a synchronous client.
- `timeouts`: the read-timeout watch of streamed bodies.
- `discovery`: models found through an endpoint's /models listing.
"""
