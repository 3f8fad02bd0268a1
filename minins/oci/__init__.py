"""The OCI runtime: bundles (config.json) and runc's command line."""
