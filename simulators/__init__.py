"""Simulated devices and incidents: a living district on the broker.

- ``model`` / ``gas_station`` / ``crowd_venue`` / ``underground``: one seeded model per site,
  advanced by simulated time; ``models.build_model`` picks the family's class.
- ``quiet``: the bands that keep the background below every alarm of the config.
- ``scenarios``: named incidents on top of the background (docs/scenarios.md).
- ``device``: one device's MQTT behaviour (client id, will, status, offline buffer, and
  losing power: the connection dies without DISCONNECT, so the broker publishes the will).
- ``fleet``: ``Simulation``, every device of a district on a schedule; ``clock``: ``SimClock``.
- ``tap``: a subscriber that keeps what arrives (the demo's alert feed, tests).
- ``loadgen``: the benchmark's load generator.
"""
