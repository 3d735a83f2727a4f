"""The operator console: a web app on port 8006 that calls the services' REST APIs."""
