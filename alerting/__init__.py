"""Safewatch alerting: from validated readings to notified supervisors.

- ``engine`` (rules, pure) turns batches into ``Signal``s;
- ``lifecycle`` records them in the alert book as transitions and events
  (``route`` says which departments, ``escalation`` climbs unacknowledged alerts);
- ``notify`` plans and sends notifications (webhook, MQTT, the SSE ``broadcast``),
  ``delivery`` drains the outbox at least once;
- ``service.AlertService`` wires one process's share of it and is what ``service`` and
  ``api`` use.

Nothing is imported here, so that importing the pure engine stays light.
"""
