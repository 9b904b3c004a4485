"""The model providers: profiles (how a conversation's settings become one provider's
request fields) and the read timeouts of their streams."""
