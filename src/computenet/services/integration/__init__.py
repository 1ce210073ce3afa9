"""What leaves the platform: notices by e-mail, webhooks, the events outbox to NATS, and the job API over NATS."""
