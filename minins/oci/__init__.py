"""The OCI runtime: config.json bundles, runc's command line and the resources converter."""
