"""Talking to a GSM modem: SMS PDUs (:mod:`.pdu`) and the AT conversation (:mod:`.at`).

Kept apart from ``alerting.channels`` so the codec and the protocol have no dependency on the
channel registry: the modem channel and the test simulator both build on them.
"""
