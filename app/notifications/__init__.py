"""Notifications: the transactional outbox, the in-app inbox and the community's webhooks.

`outbox.emit` is the one place a domain change becomes an event; `catalogue` says who hears
each event type; `inbox` renders notifications when read; `delivery` posts webhook events.
"""
