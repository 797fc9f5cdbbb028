"""The secretariat's hub: nats-server configuration, credentials, provisioning and status."""
