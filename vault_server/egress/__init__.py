"""The one HTTP client that talks to brokers (proxy mode and attestation)."""
