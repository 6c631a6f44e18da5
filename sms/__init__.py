"""The SMS channel: keyword self-service in, outgoing messages out (DESIGN.md §2, §13).

`sms.segments` measures and splits texts (GSM 03.38 / UCS-2), `sms.render` lays a
screen out as one SMS, `sms.conversation` turns an incoming message into a turn of the
engine (keywords start sessions, reply digits continue them), `sms.dialects` holds one
module per gateway wire format (Kannel first), `sms.sender` delivers the outbox, and
`sms.channel` is the plug-in the core mounts.
"""

__all__: list[str] = []
