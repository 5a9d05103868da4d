"""The channels notifications go out on: ``webhook`` (signed POSTs) and ``mqtt`` (QoS 1 publishes)."""
