"""Support for the acceptance tests in tests/e2e/ (and the cluster, console and fault tests that drive
``safewatch serve`` the same way): clients, the district config, the serve process, webhook receivers."""
