"""What an operator watches: Prometheus metrics (`metrics` records, `exposition` serves)."""
