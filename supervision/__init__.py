"""Hazard supervision (contract section 10): listing from alerts, the rectification lifecycle,
the overdue chain, reports by street and sector, and the safety credit of each site.

``SupervisionService`` (``supervision.service``) is what ``service`` wires into a process; the
API uses ``Ledger`` (moves), ``reports`` and ``credit`` through it.
"""
