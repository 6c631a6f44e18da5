"""Top-up reminders (充值提醒): opt in with a threshold, one SMS per crossing.

`events` (the TMF654-style event body), `store` (subscriptions, consent, the crossing
ledger), `quiet` (quiet hours, the day the cap counts), `service` (`Reminders`: the
flows' service and the event path), `jetstream` (the durable consumer), `wiring` (the
app and the HTTP event route), `cli` (`hotline reminders …`). See docs/reminders.md.
"""
